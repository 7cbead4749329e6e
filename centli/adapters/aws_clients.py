"""AWS clients built one way: standard retry mode, short timeouts, no silent default region.

They are botocore clients (what ``boto3.client`` returns), built on a botocore
session: boto3's own layers (resources, s3transfer) are never used by the
adapters, and importing them is about a tenth of a Lambda cold start
(docs/performance.md).
"""

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
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    config = Config(
        retries={"mode": "standard", "total_max_attempts": REQUEST_ATTEMPTS},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )
    region = session.get_config_variable("region") or ("us-east-1" if endpoint_url else None)
    return session.create_client(service, endpoint_url=endpoint_url, region_name=region, config=config)
