"""AWS Secrets Manager through boto3, with version stages as AWS's own rotation uses them.

A write stores the new value as AWSPENDING, then moves AWSCURRENT onto it with
``RemoveFromVersionId`` set to the version the caller expects: Secrets Manager refuses
that move when AWSCURRENT is elsewhere, which makes it a check-and-set. AWS then puts
AWSPREVIOUS on the old version, so a rollback is one label move. Every read names its
stage or version explicitly (moto, the test server, can answer a stage-less read with
a stale version).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]

from searchgate.secretstores.base import (
    FIELD,
    SecretFields,
    SecretVersion,
    StoreConflict,
    StoreError,
    StoreMisconfigured,
    StoreNotFound,
    StorePermissionDenied,
    StoreUnavailable,
    scrub,
)
from searchgate_client.sources import region_from_arn

log = logging.getLogger("searchgate.secretstores")

T = TypeVar("T")

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"

_DENIED = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"}
_AUTH = {
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
}
_UNAVAILABLE = {"InternalServiceError", "ServiceUnavailable", "ThrottlingException"}


@dataclass(frozen=True)
class AwsConfig:
    secret_id: str  # name or ARN
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    timeout: float = 5.0
    retries: int = 2  # retries after the first attempt

    def __repr__(self) -> str:
        return (
            f"AwsConfig(secret_id={self.secret_id!r}, region={self.region!r}, "
            f"profile={self.profile!r}, endpoint_url={self.endpoint_url!r})"
        )


class AwsSecretsManagerStore:
    kind = "aws"
    writable = True

    def __init__(self, config: AwsConfig) -> None:
        if not config.secret_id.strip():
            raise StoreMisconfigured("the AWS secret id (name or ARN) is empty")
        self.config = config
        self.secret_id = config.secret_id
        self.location = f"aws:{config.secret_id}"
        try:
            session = boto3.session.Session(
                profile_name=config.profile,
                region_name=config.region or region_from_arn(config.secret_id),
                aws_access_key_id=config.access_key_id,
                aws_secret_access_key=config.secret_access_key,
                aws_session_token=config.session_token,
            )
        except botocore.exceptions.ProfileNotFound:
            raise StoreMisconfigured(
                f"the AWS profile {config.profile!r} does not exist in the AWS config files; "
                "check AWS_PROFILE"
            ) from None
        if session.region_name is None:
            raise StoreMisconfigured(
                "no AWS region: set AWS_REGION (or a region in the profile), or give the "
                "secret as a full ARN"
            )
        self.region: str = session.region_name
        self._sm = session.client(
            "secretsmanager",
            endpoint_url=config.endpoint_url,
            config=botocore.config.Config(
                connect_timeout=config.timeout,
                read_timeout=config.timeout,
                retries={"total_max_attempts": config.retries + 1, "mode": "standard"},
            ),
        )

    def __repr__(self) -> str:
        return f"AwsSecretsManagerStore({self.location!r}, region={self.region!r})"

    # --- the protocol -------------------------------------------------------------

    def read(self) -> SecretVersion:
        resp = self._call(
            "read the current version",
            lambda: self._sm.get_secret_value(SecretId=self.secret_id, VersionStage=CURRENT),
        )
        return self._version_from(resp)

    def read_version(self, version: str) -> SecretVersion:
        if not 32 <= len(version) <= 64:
            # Secrets Manager's own bound: anything else is not one of its version ids.
            raise StoreNotFound(f"{self.location}: {version!r} is not an AWS version id")
        try:
            resp = self._call(
                f"read version {version}",
                lambda: self._sm.get_secret_value(SecretId=self.secret_id, VersionId=version),
            )
        except StoreNotFound:
            raise StoreNotFound(
                f"{self.location}: no version {version} (AWS removes versions that carry no "
                "stage label once there are many)"
            ) from None
        return self._version_from(resp)

    def write(self, value: str, expected_version: str | None) -> SecretVersion:
        if not value:
            raise StoreMisconfigured(f"{self.location}: refusing to write an empty key")
        body = json.dumps({FIELD: value})
        try:
            current: str | None = self._current_id()
        except StoreNotFound:
            current = None
        if current is None:
            if expected_version is not None:
                raise StoreConflict(
                    f"{self.location}: expected version {expected_version} but the secret "
                    "does not exist"
                )
            return self._create(value, body)
        if current != expected_version:
            raise self._conflict(expected_version)
        token = str(uuid.uuid4())
        resp = self._call(
            "store the new value as AWSPENDING",
            lambda: self._sm.put_secret_value(
                SecretId=self.secret_id,
                ClientRequestToken=token,
                SecretString=body,
                VersionStages=[PENDING],
            ),
            secrets=(value, body),
        )
        new_id = str(resp["VersionId"])
        try:
            self._promote(new_id, current)
        finally:
            # Promoted or orphaned by a conflict, the new version must not look like a
            # rotation in progress to other tools.
            self._drop_pending(new_id)
        return self._written(new_id)

    def restore(self, version: str, expected_version: str) -> SecretVersion:
        target = self.read_version(version)
        current = self._current_id()
        if current != expected_version:
            raise self._conflict(expected_version)
        if current == version:
            return target
        self._promote(version, current)
        return target

    def check_writable(self) -> None:
        try:
            desc = self._call(
                "describe the secret", lambda: self._sm.describe_secret(SecretId=self.secret_id)
            )
        except StoreNotFound:
            # Not there yet: the first write creates it. Permission to create can only
            # be proved by creating, which a probe must not do.
            return
        if desc.get("DeletedDate"):
            raise StoreMisconfigured(
                f"{self.location}: the secret is scheduled for deletion; restore it with "
                "`aws secretsmanager restore-secret` first"
            )
        if desc.get("RotationEnabled"):
            raise StoreMisconfigured(
                f"{self.location}: AWS-managed rotation is enabled on this secret; two "
                "rotators would overwrite each other's keys: cancel it with "
                "`aws secretsmanager cancel-rotate-secret` or keep it out of Searchgate"
            )
        # Reading the current version proves read access and decryption with the KMS key.
        self.read()

    # --- several named values (the server secrets) -------------------------------

    def read_fields(self) -> SecretFields:
        resp = self._call(
            "read the current version",
            lambda: self._sm.get_secret_value(SecretId=self.secret_id, VersionStage=CURRENT),
        )
        raw = resp.get("SecretString")
        try:
            doc = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise StoreMisconfigured(f"{self.location}: the secret is not a JSON object")
        values = {k: v for k, v in doc.items() if isinstance(v, str) and v}
        return SecretFields(values=values, version=str(resp["VersionId"]))

    def create_fields(self, values: Mapping[str, str]) -> SecretFields:
        body = json.dumps(dict(values))
        token = str(uuid.uuid4())
        try:
            resp = self._call(
                "create the secret",
                lambda: self._sm.create_secret(
                    Name=self.secret_id, ClientRequestToken=token, SecretString=body
                ),
                secrets=(*values.values(), body),
            )
        except StoreConflict:
            raise StoreConflict(f"{self.location}: a secret already exists there") from None
        return SecretFields(values=dict(values), version=str(resp["VersionId"]))

    # --- plumbing -----------------------------------------------------------------

    def _written(self, version: str) -> SecretVersion:
        resp = self._call(
            f"read back version {version}",
            lambda: self._sm.get_secret_value(SecretId=self.secret_id, VersionId=version),
        )
        return self._version_from(resp)

    def _current_id(self) -> str:
        resp = self._call(
            "read the current version",
            lambda: self._sm.get_secret_value(SecretId=self.secret_id, VersionStage=CURRENT),
        )
        return str(resp["VersionId"])

    def _create(self, value: str, body: str) -> SecretVersion:
        token = str(uuid.uuid4())
        try:
            resp = self._call(
                "create the secret",
                lambda: self._sm.create_secret(
                    Name=self.secret_id, ClientRequestToken=token, SecretString=body
                ),
                secrets=(value, body),
            )
        except StoreConflict:
            raise StoreConflict(
                f"{self.location}: the secret was created by someone else meanwhile; read it "
                "and pass its current version"
            ) from None
        return self._written(str(resp["VersionId"]))

    def _promote(self, new_id: str, current: str) -> None:
        try:
            self._call(
                f"move {CURRENT} to version {new_id}",
                lambda: self._sm.update_secret_version_stage(
                    SecretId=self.secret_id,
                    VersionStage=CURRENT,
                    MoveToVersionId=new_id,
                    RemoveFromVersionId=current,
                ),
            )
        except StoreMisconfigured:
            # InvalidParameter: AWSCURRENT is no longer on ``current``.
            now = self._current_id()
            if now != current:
                raise self._conflict(current) from None
            raise

    def _drop_pending(self, version: str) -> None:
        try:
            self._call(
                f"remove {PENDING} from version {version}",
                lambda: self._sm.update_secret_version_stage(
                    SecretId=self.secret_id, VersionStage=PENDING, RemoveFromVersionId=version
                ),
            )
        except StoreError as exc:
            # The new version is current already; a leftover AWSPENDING label is moved by
            # the next write and harms nothing, so this is not a failed write.
            log.warning("%s: could not remove %s: %s", self.location, PENDING, exc.message)

    def _conflict(self, expected: str | None) -> StoreConflict:
        if expected is None:
            return StoreConflict(
                f"{self.location}: a secret already exists there; read it and pass its "
                "current version to replace it"
            )
        return StoreConflict(
            f"{self.location}: {CURRENT} is no longer version {expected} (someone else "
            "wrote it); read it again and decide"
        )

    def _version_from(self, resp: dict[str, Any]) -> SecretVersion:
        raw = resp.get("SecretString")
        try:
            doc = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            doc = None
        value = doc.get(FIELD) if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value:
            raise StoreMisconfigured(
                f"{self.location}: the secret is not a JSON object with a string field "
                f'{FIELD!r}; store it as {{"{FIELD}": "..."}}'
            )
        return SecretVersion(
            value=value, version=str(resp["VersionId"]), created_at=resp.get("CreatedDate")
        )

    def _call(self, what: str, fn: Callable[[], T], *, secrets: tuple[str, ...] = ()) -> T:
        """Runs one API call (botocore retries it within its bounded budget) and maps
        failures to StoreErrors. Exceptions are not chained: botocore's texts can quote
        parameter values, and a parameter here may be the key."""
        where = f"{self.location} ({self.region})"
        hide = (*secrets, self.config.secret_access_key, self.config.session_token)
        try:
            return fn()
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error") or {}
            code = str(error.get("Code") or "")
            status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            detail = scrub(str(error.get("Message") or ""), hide)
            err = self._map(code, status, detail, what, where)
        except botocore.exceptions.NoCredentialsError:
            err = StoreMisconfigured(
                f"{where}: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or run where an instance/task role applies"
            )
        except botocore.exceptions.SSLError:
            err = StoreMisconfigured(f"{where}: could not {what}: TLS verification failed")
        except (
            botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError,
        ):
            err = StoreUnavailable(
                f"{where}: could not {what}: timed out after {self.config.retries + 1} attempts "
                f"(timeout {self.config.timeout:g} s)"
            )
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ConnectionError,
        ):
            err = StoreUnavailable(
                f"{where}: could not {what}: cannot connect to "
                f"{self.config.endpoint_url or 'Secrets Manager'} after "
                f"{self.config.retries + 1} attempts"
            )
        except botocore.exceptions.ParamValidationError:
            err = StoreMisconfigured(f"{where}: could not {what}: a parameter was refused")
        except botocore.exceptions.BotoCoreError as exc:
            err = StoreError(f"{where}: could not {what}: {type(exc).__name__}")
        raise err from None

    @staticmethod
    def _map(code: str, status: Any, detail: str, what: str, where: str) -> StoreError:
        msg = f"{where}: could not {what}: {code or f'HTTP {status}'} ({detail or 'no detail'})"
        if code == "ResourceNotFoundException":
            return StoreNotFound(msg)
        # moto answers IAM refusals with an XML body that botocore parses as code "403".
        if code in _DENIED or status == 403:
            return StorePermissionDenied(
                msg + "; the IAM policy needs secretsmanager:GetSecretValue, PutSecretValue, "
                "UpdateSecretVersionStage, DescribeSecret (and CreateSecret for a new secret)"
            )
        if code in _AUTH:
            return StorePermissionDenied(msg + "; the AWS credentials are invalid or expired")
        if code == "ResourceExistsException":
            return StoreConflict(msg)
        if code in ("InvalidParameterException", "InvalidRequestException"):
            return StoreMisconfigured(msg)
        if code in _UNAVAILABLE or (isinstance(status, int) and status >= 500):
            return StoreUnavailable(msg + " after the bounded retries")
        if code == "DecryptionFailure":
            return StorePermissionDenied(msg + "; the credentials may not use the secret's KMS key")
        return StoreError(msg)
