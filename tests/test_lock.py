"""requirements.lock is what a fresh machine installs: it must pin every requirement of requirements.txt at a
version that requirement allows (a requirement edited without `make lock` fails here), and pin exactly."""

from __future__ import annotations

from packaging.markers import Marker
from packaging.requirements import Requirement

from tests.conftest import REPO

PYTHON_311_LINUX = {
    "python_full_version": "3.11.0",
    "python_version": "3.11",
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "platform_system": "Linux",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
}


def _requirements(path: str) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in (REPO / path).read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def test_the_lock_pins_every_requirement_within_its_specifier() -> None:
    locked: dict[str, str] = {}
    for requirement in _requirements("requirements.lock"):
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"requirements.lock: {requirement} is not a pin"
        if requirement.marker is None or Marker(str(requirement.marker)).evaluate(PYTHON_311_LINUX):
            locked[_canonical(requirement.name)] = specifiers[0].version
    for requirement in _requirements("requirements.txt"):
        name = _canonical(requirement.name)
        assert name in locked, f"requirements.txt: {requirement.name} is not in requirements.lock (run make lock)"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {name}=={locked[name]}, outside requirements.txt's {requirement} (run make lock)"
        )
