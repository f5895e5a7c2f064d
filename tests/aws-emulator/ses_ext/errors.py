"""SES v2 error types, as the REST-JSON protocol carries them.

moto's JsonRESTError renders `{"__type": code, "message": ...}` with the
HTTP status and the `X-Amzn-ErrorType` header the SDKs read the code from.
"""

from moto.core.exceptions import JsonRESTError


class SesV2Error(JsonRESTError):
    code = 400
    error_type = "BadRequestException"

    def __init__(self, message: str):
        super().__init__(self.error_type, message)


class BadRequest(SesV2Error):
    error_type = "BadRequestException"


class NotFound(SesV2Error):
    code = 404
    error_type = "NotFoundException"


class AlreadyExists(SesV2Error):
    error_type = "AlreadyExistsException"


class LimitExceeded(SesV2Error):
    error_type = "LimitExceededException"


class SendingPaused(SesV2Error):
    error_type = "SendingPausedException"


class AccountSuspended(SesV2Error):
    error_type = "AccountSuspendedException"
