"""The project's extension of moto for SES v2 (see README.md).

`install()` patches moto's classes before the server starts; `wrap(app)`
puts the admin API and the CloudWatch CBOR adapter in front of moto's WSGI
application.
"""

from typing import Callable

from . import cloudwatch, control, sesv2, sns
from .cbor import CloudWatchCbor


def install() -> None:
    sesv2.install()
    sns.install()
    cloudwatch.install()
    control.install()


def wrap(app: Callable) -> Callable:
    return control.AdminApp(CloudWatchCbor(app))
