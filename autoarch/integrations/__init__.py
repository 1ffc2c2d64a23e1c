"""Optional integrations with other NAS tools; each module imports its tool, the core never does.

- :mod:`autoarch.integrations.nni`: an NNI 3.0 ``ModelSpace`` as an autoarch search space (``pip install -c
  constraints-nni.txt "autoarch[nni]"``).
"""
