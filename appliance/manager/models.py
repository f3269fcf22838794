"""Request bodies of the WS-API (pydantic). Unknown fields are refused; every limit matches a column."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


Text = Annotated[str, AfterValidator(_encodable)]
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="letters, digits, '.', '_' and '-', starting with a letter or digit",
    ),
]
Description = Annotated[Text, Field(max_length=255)]
ObjectId = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[0-9a-f-]+$")]
Address = Annotated[
    str,
    Field(
        min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:\[\]-]+$", description="host name or IP address"
    ),
]
IPAddress = Annotated[str, Field(max_length=45), AfterValidator(_ip)]
Password = Annotated[Text, Field(min_length=8, max_length=1024)]
Role = Literal["admin", "readonly"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Patch(Strict):
    @model_validator(mode="after")
    def _not_empty(self) -> Patch:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class ServerPoolCreate(Strict):
    name: Name
    description: Description = ""
    virtual_ip: IPAddress | None = None


class ServerPoolUpdate(Patch):
    name: Name | None = None
    description: Description | None = None
    virtual_ip: IPAddress | None = None


class ServerCreate(Strict):
    """With ``agent_password`` the manager discovers the server and takes ownership (a job); without,
    it only registers the address (state ``unowned``) for a later discovery."""

    address: Address
    name: Name | None = None
    description: Description = ""
    pool_id: ObjectId | None = None
    agent_password: Annotated[Text, Field(min_length=1, max_length=1024)] | None = None
    agent_port: Annotated[int, Field(ge=1, le=65535)] = 8899


class ServerUpdate(Patch):
    name: Name | None = None
    description: Description | None = None
    pool_id: ObjectId | None = None


class RepositoryCreate(Strict):
    name: Name
    kind: Literal["nfs", "local"]
    uri: Annotated[Text, Field(min_length=1, max_length=1024)]
    description: Description = ""


class RepositoryUpdate(Patch):
    name: Name | None = None
    uri: Annotated[Text, Field(min_length=1, max_length=1024)] | None = None
    description: Description | None = None


class DiskSpec(Strict):
    name: Name
    size_mib: Annotated[int, Field(ge=1, le=16 * 1024 * 1024)]
    repository_id: ObjectId | None = None


class NicSpec(Strict):
    network: Name
    mac: Annotated[str, Field(pattern=r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")] | None = None


AbsPath = Annotated[Text, Field(min_length=2, max_length=1024, pattern=r"^/")]


class BootSpec(Strict):
    """Direct kernel boot (PV/PVH guests, or tiny test guests); without it a VM boots from its disk."""

    kernel: AbsPath
    initrd: AbsPath | None = None
    cmdline: Annotated[Text, Field(max_length=1024)] = ""


class VmCreate(Strict):
    name: Name
    description: Description = ""
    domain_type: Literal["pv", "pvh", "hvm"] = "pvh"
    vcpus: Annotated[int, Field(ge=1, le=128)] = 1
    memory_mib: Annotated[int, Field(ge=32, le=4 * 1024 * 1024)] = 512
    server_id: ObjectId | None = None
    pool_id: ObjectId | None = None
    repository_id: ObjectId | None = None
    ha: bool = False
    disks: Annotated[list[DiskSpec], Field(max_length=16)] = []
    nics: Annotated[list[NicSpec], Field(max_length=8)] = []
    boot: BootSpec | None = None


class VmUpdate(Patch):
    name: Name | None = None
    description: Description | None = None
    vcpus: Annotated[int, Field(ge=1, le=128)] | None = None
    memory_mib: Annotated[int, Field(ge=32, le=4 * 1024 * 1024)] | None = None
    server_id: ObjectId | None = None
    pool_id: ObjectId | None = None
    ha: bool | None = None
    boot: BootSpec | None = None


class VmStart(Strict):
    server_id: ObjectId | None = None


class VmStop(Strict):
    force: bool = False


class UserCreate(Strict):
    name: Name
    password: Password
    role: Role = "readonly"
    description: Description = ""


class UserUpdate(Patch):
    password: Password | None = None
    role: Role | None = None
    description: Description | None = None


SshPublicKey = Annotated[
    Text, Field(min_length=8, max_length=16384, description="one line of an OpenSSH .pub file")
]


class SessionCreate(Strict):
    """Log in with a password; or, for the SSH front end only (its companion certificate), for a user
    whose registered SSH key it has verified."""

    username: Annotated[Text, Field(min_length=1, max_length=64)]
    password: Annotated[Text, Field(min_length=1, max_length=1024)] | None = None
    ssh_public_key: SshPublicKey | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> SessionCreate:
        if (self.password is None) == (self.ssh_public_key is None):
            raise ValueError("give either password or ssh_public_key")
        return self


class SshKeyCreate(Strict):
    public_key: SshPublicKey


class BackupConfig(Strict):
    interval_minutes: Annotated[int, Field(ge=360, le=43_200)] = 1440
    keep: Annotated[int, Field(ge=1, le=500)] = 21


class AgentEvent(Strict):
    id: Annotated[Text, Field(min_length=1, max_length=64)]
    time: Annotated[float, Field(ge=0, le=32_503_680_000)]
    severity: Literal["info", "warning", "error", "critical"]
    type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]
    object_type: Literal["server", "vm"]
    object_id: ObjectId
    message: Annotated[Text, Field(max_length=4096)]


class AgentEvents(Strict):
    events: Annotated[list[AgentEvent], Field(max_length=1000)]


class Sample(Strict):
    object_type: Literal["server", "vm"]
    object_id: ObjectId
    metric: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")]
    time: Annotated[float, Field(ge=0, le=32_503_680_000)]
    value: Annotated[float, Field(allow_inf_nan=False)]


class Samples(Strict):
    samples: Annotated[list[Sample], Field(max_length=10_000)]


class TokenCreate(Strict):
    ttl_seconds: Annotated[int, Field(ge=60, le=30 * 24 * 3600)] = 24 * 3600
    uses: Annotated[int, Field(ge=1, le=1000)] = 1


class Enrollment(Strict):
    token: Annotated[Text, Field(min_length=1, max_length=128)]
    server_uuid: Annotated[
        str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    ]
    hostname: Annotated[Text, Field(min_length=1, max_length=64)]
    address: Address
    agent_port: Annotated[int, Field(ge=1, le=65535)] = 8899
    agent_fingerprint: Annotated[str, Field(pattern=r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$")]
    csr_pem: Annotated[Text, Field(min_length=1, max_length=8192)]


class Release(Strict):
    force: bool = False
