"""AWS access keys: the configured ones (`AccessKey`, from `--aws-credentials`), and
`FunctionKeys`, the credentials each function's instances get, so that the AWS calls a handler
makes through the SDK (`boto3.client("sqs")`, with `AWS_ENDPOINT_URL` pointing at the platform)
are signed, verified like any client's, and attributed to that function.

Lambda gives every function its execution role's temporary credentials; unkai derives a key
pair per function from a secret the node draws at start: the access key id names the function
(`UNKAIF` + base32 of `<stage>/<function>`), and its secret is an HMAC of that id under the
node secret. Nothing is stored: the verifier recognises such an id and derives the secret
again. A restart draws a new node secret, and with it new keys; instances of the old process
are gone by then.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

PREFIX = "UNKAIF"


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    #: The account a call signed with this key acts in; None: the platform's account.
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    stage: str
    function: str


class FunctionKeys:
    def __init__(self, node_secret: bytes | None = None) -> None:
        self._secret = node_secret or os.urandom(32)

    def key_for(self, stage: str, function: str) -> FunctionKey:
        encoded = base64.b32encode(f"{stage}/{function}".encode()).decode().rstrip("=")
        access_key_id = PREFIX + encoded
        return FunctionKey(access_key_id, self._secret_of(access_key_id), stage, function)

    def lookup(self, access_key_id: str) -> FunctionKey | None:
        """The function key `access_key_id` names, or None when it is not one."""
        if not access_key_id.startswith(PREFIX):
            return None
        encoded = access_key_id[len(PREFIX) :]
        try:
            name = base64.b32decode(encoded + "=" * (-len(encoded) % 8)).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        stage, sep, function = name.partition("/")
        if not sep:
            return None
        return FunctionKey(access_key_id, self._secret_of(access_key_id), stage, function)

    def _secret_of(self, access_key_id: str) -> str:
        return hmac.new(self._secret, access_key_id.encode(), hashlib.sha256).hexdigest()


class KeyRing(Mapping[str, AccessKey]):
    """The configured access keys plus every function's derived key, as one read-only mapping
    (what `SigV4Verifier` looks keys up in)."""

    def __init__(self, configured: Mapping[str, AccessKey], functions: FunctionKeys) -> None:
        self._configured = configured
        self.functions = functions

    def __getitem__(self, access_key_id: str) -> AccessKey:
        found = self._configured.get(access_key_id)
        if found is not None:
            return found
        key = self.functions.lookup(access_key_id)
        if key is None:
            raise KeyError(access_key_id)
        return AccessKey(key.access_key_id, key.secret_access_key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._configured)

    def __len__(self) -> int:
        return len(self._configured)
