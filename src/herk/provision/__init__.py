"""Provisioners that run as a job's subprocess on the herk host (``python -m herk.provision.…``).

``local`` is the cloud that works on a fresh machine with no Chef and no cloud account: it is
honest about what it does (a directory and a real process on this host, not a virtual machine).
"""
