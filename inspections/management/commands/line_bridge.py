"""``manage.py line_bridge``: camera folders in, MQTT and OPC UA out (``inspections/line/bridge``)."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand, CommandError

from inspections.line.bridge.config import BridgeConfigError, bridge_config
from inspections.line.bridge.runner import LineBridge


class Command(BaseCommand):
    help = ("Run the line bridge until SIGTERM: classify the image files dropped into watched folders (moved to "
            "DIR/done/ or DIR/failed/), publish results to MQTT, serve them over OPC UA.")

    def add_arguments(self, parser):
        parser.add_argument("--folder", action="append", metavar="SOURCE=DIR",
                            help="Watch DIR for SOURCE's frames (repeatable; replaces STEELQC_BRIDGE_FOLDERS).")

    def handle(self, *args, **options):
        try:
            config = bridge_config(folders=options["folder"])
        except BridgeConfigError as error:
            raise CommandError(str(error)) from None
        bridge = LineBridge(config)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: bridge.stop.set())
        try:
            bridge.run()
        except RuntimeError as error:  # a server that could not start (the OPC UA port taken, ...)
            raise CommandError(str(error)) from None
