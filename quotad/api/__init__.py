"""The operator and customer HTTP API (SPEC §5) in front of the quota store; see routes.setup()."""

from quotad.api.routes import setup

__all__ = ["setup"]
