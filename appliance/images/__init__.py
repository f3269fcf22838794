"""Image builds: installable manager and server ISOs (BIOS and UEFI, CD and USB), reproducibly.

The build is a linear pipeline of small steps (``pipeline.py``) around a frozen ``BuildContext``:
bootstrap (mmdebstrap, cached) -> unpack -> minimise -> install our package -> configure ->
squashfs -> boot files -> ISO (pycdlib) -> GPT fix -> manifest. Pure logic (role specs, boot menu,
GPT, manifest, command lines) lives apart from the code that runs programs.
"""
