"""The models of `/api/v1/users` (`users.py`): an account as shown, as added, as changed,
and a new password.

Place in the flow: beside `users.py`. What a field must be is checked here, by the same rules
as `pytrs users` and the admin page: a login by `config/checks.login_name`, an address by
`single_address`, a password by `users/passwords.check`, lengths by the columns' own; pydantic
reports each as a 422 naming the field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from pytrs.config.checks import login_name, single_address
from pytrs.schema import storable
from pytrs.schema.tables import users
from pytrs.schema.users_repo import UserRow
from pytrs.users import passwords

Role = Literal["agent", "admin"]
Access = Literal["rw", "ro"]


class UserOut(BaseModel):
    """An agent or admin account, without its password hash."""

    id: int = Field(description="The account's id (users.id).")
    login: str = Field(description="The login name, unique.")
    name: str = Field(description="First and last name.")
    email: str = Field(description="The agent's own e-mail address.")
    role: Role = Field(description="`admin` may use the admin pages and the admin API.")
    valid: bool = Field(description="False: disabled, it can neither sign in nor use a token.")
    queues: dict[str, Access] = Field(
        description="Queue name → `rw` (read and change) or `ro` (read only), given through "
        "each queue's permission group: queues that share a group share access."
    )
    managed: bool = Field(
        description="Named by the configuration's [[agents]]: its address, validity and queue "
        "access are set from the file at every start and cannot be changed here."
    )

    @classmethod
    def of(cls, row: UserRow) -> UserOut:
        role: Role = "admin" if row.admin else "agent"
        return cls(
            id=row.id,
            login=row.login,
            name=row.name,
            email=row.email,
            role=role,
            valid=row.valid,
            queues={name: "rw" if key == "rw" else "ro" for name, key in row.queues.items()},
            managed=row.provisioned,
        )


def _checked(problem: str | None, value: str) -> str:
    if problem:
        # Not a ValueError: pydantic would prefix the message with "Value error, ".
        raise PydanticCustomError("invalid", problem)
    return value


# What the checks below require, said in the JSON Schema too (`json_schema_extra`: documented
# for clients, while the checks answer with their own sentences).
LOGIN: JsonDict = {"pattern": r"^[^\s\x00-\x20\x7f-\xa0]+$", "maxLength": 200}
_ADDRESS_PART = r"[^\s\x00-\x20\x7f-\xa0@,;<>]+"  # Python's isspace() is wider than \s
EMAIL: JsonDict = {"pattern": f"^{_ADDRESS_PART}@{_ADDRESS_PART}$", "maxLength": 150}
PASSWORD: JsonDict = {"minLength": passwords.MIN_LENGTH, "writeOnly": True}
# "First Last": the first part up to the first space, the rest, each at most a name column.
NAME: JsonDict = {"pattern": r"^[^ ]{0,100}( [\s\S]{0,100})?$"}


class _Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("email", check_fields=False)
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        return _checked(single_address(value) or storable.problem(users.c.email, value), value)

    @field_validator("name", check_fields=False)
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else value.strip()


class UserCreate(_Profile):
    """A new account. Without a password it cannot sign in to the web until one is set (an
    admin can still give it API tokens)."""

    login: str = Field(
        description="Unique; not empty, no spaces.", examples=["alice"], json_schema_extra=LOGIN
    )
    email: str = Field(
        description="The agent's own address (one bare address).", json_schema_extra=EMAIL
    )
    name: str = Field("", description='"First Last"; the login when empty.', json_schema_extra=NAME)
    role: Role = Field("agent", description="`admin` also gets the admin pages and API.")
    queues: dict[str, Access] = Field(
        default_factory=dict, description="Queue name → `rw` or `ro`; unknown names are refused."
    )
    password: str | None = Field(
        None,
        description=f"At least {passwords.MIN_LENGTH} characters; stored as an argon2id hash.",
        json_schema_extra=PASSWORD,
    )

    @field_validator("login")
    @classmethod
    def _login(cls, value: str) -> str:
        return _checked(login_name(value) or storable.problem(users.c.login, value), value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value is not None:
            _strong(value)
        return value


class UserChange(_Profile):
    """What to change on an account; fields left out stay as they are."""

    email: str | None = Field(
        None, description="The agent's own address (one bare address).", json_schema_extra=EMAIL
    )
    name: str | None = Field(
        None, description='"First Last"; the login when empty.', json_schema_extra=NAME
    )
    role: Role | None = Field(None, description="`agent` or `admin`.")
    queues: dict[str, Access] | None = Field(
        None, description="Queue name → `rw` or `ro`, replacing all of the account's access."
    )
    valid: bool | None = Field(None, description="False disables the account, true enables it.")


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(
        description=f"At least {passwords.MIN_LENGTH} characters; stored as an argon2id hash.",
        json_schema_extra=PASSWORD,
    )

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return _strong(value)


def _strong(password: str) -> str:
    try:
        passwords.check(password)
    except passwords.WeakPassword as exc:
        raise PydanticCustomError("weak-password", str(exc)) from None
    return password
