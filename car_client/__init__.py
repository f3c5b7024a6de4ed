"""Trackside's car client: runs on a DeepRacer or DIY car, links it to a Trackside server.

Importing this package loads no server library (tests/test_car_client_imports.py checks it): a car
needs only websockets, numpy, onnxruntime, msgpack and pydantic (for ``race_server.protocol``).
"""

__version__ = "0.1.0"
