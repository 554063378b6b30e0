"""The line bridge (``manage.py line_bridge``): the line's own ways in and out, around the same
service path as ``classify/``.

In: image files dropped into watched folders (``folder.py``) and, optionally, frames published
to ``steelqc/<source>/frame`` (``mqtt.py``). Out: each result published to
``steelqc/<source>/result`` and alerts to ``steelqc/<source>/alert`` (``mqtt.py``, from the outbox
written by ``inspections/line/services/bridge.py``), and an OPC UA server with each source's
latest values (``opcua.py``). ``runner.py`` runs them as one process; ``config.py`` reads the
settings. The records that make restarts safe are ``BridgeFrame`` and ``BridgeMessage``.
"""
