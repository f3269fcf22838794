"""Installer: turns a kickstart or interactive answers into an installed manager or server host.

Data flows one way: answer source -> kickstart text -> validation (pykickstart) -> ``Answers``
-> install plan -> install steps on the target disk.
"""
