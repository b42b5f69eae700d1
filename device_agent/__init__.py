"""edgeperf device agent: runs on the device with the standard library, numpy and a runtime.

It never imports ``host``: it is shipped to the device alone, as one zipapp.
"""

__version__ = "0.1.0"
