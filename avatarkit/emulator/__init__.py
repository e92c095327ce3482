"""A faithful local emulator of the avatar services (``avatarkit emulator``).

Needs the ``emulator`` extra: ``pip install 'avatarkit[emulator]'``.
"""

from avatarkit.emulator.options import EmulatorOptions
from avatarkit.emulator.server import Emulator, serve

__all__ = ["Emulator", "EmulatorOptions", "serve"]
