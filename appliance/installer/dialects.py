"""Names of the kickstart grammars (ks_parse maps them to pykickstart versions).

Kept apart from ks_parse so that building the command line does not import pykickstart.
"""

DIALECT_CHOICES = ("auto", "rhel9", "ovm3")
