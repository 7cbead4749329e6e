"""DynamoDB adapters: the store (one TransactWriteItems per command) and the table definitions."""

from centli.adapters.dynamodb.codecs import event_from_stream_image
from centli.adapters.dynamodb.runner import make_dynamodb_client
from centli.adapters.dynamodb.schema import TableNames
from centli.adapters.dynamodb.store import DynamoStore, DynamoUnitOfWork

__all__ = ["DynamoStore", "DynamoUnitOfWork", "TableNames", "event_from_stream_image", "make_dynamodb_client"]
