"""``traitlens serve``: a local page to steer a model and watch its personality move."""

from traitlens.serve.app import create_app
from traitlens.serve.session import Playground

__all__ = ["create_app", "Playground"]
