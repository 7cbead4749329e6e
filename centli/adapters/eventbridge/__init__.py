"""EventBridge adapter: the :class:`EventPublisher` that PutEvents to the bus."""

from centli.adapters.eventbridge.publisher import EventBridgePublisher, make_events_client

__all__ = ["EventBridgePublisher", "make_events_client"]
