"""boto3 clients built one way: standard retry mode, short timeouts, no silent default region."""

from __future__ import annotations

from typing import Any, Final

#: botocore's standard retry mode handles throttling; this bounds the attempts per request.
REQUEST_ATTEMPTS: Final = 3


def make_client(service: str, endpoint_url: str | None = None) -> Any:
    """A client for ``service`` at ``endpoint_url`` (the settings' AWS_ENDPOINT_URL[_<SERVICE>]), else AWS.

    The region defaults to us-east-1 only for a local endpoint (moto, DynamoDB Local). Against
    AWS, botocore resolves it as usual and raises NoRegionError when none is configured, rather
    than silently writing to us-east-1.
    """
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    config = Config(
        retries={"mode": "standard", "total_max_attempts": REQUEST_ATTEMPTS},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )
    region = session.region_name or ("us-east-1" if endpoint_url else None)
    return session.client(service, endpoint_url=endpoint_url, region_name=region, config=config)  # type: ignore[call-overload]
