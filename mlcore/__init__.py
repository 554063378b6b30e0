"""steelqc's machine-learning engine.

A plain library (TensorFlow/Keras, NumPy, Pillow) with a command line (``python -m mlcore``).
It knows files, arrays and dataclasses; it never imports Django. Importing the package is
cheap: TensorFlow is only loaded by the modules that need it (training, inference, ...).
"""

__version__ = "0.2.0"
