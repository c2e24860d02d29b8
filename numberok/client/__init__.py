"""
A NumberOk event client: the Twisted protocol integrators subclass
(L{numberok.client.protocol}) and the C{numberok-client} command
(L{numberok.client.command}).
"""

from numberok.client.command import (
                                     EXIT_CONNECT,
                                     EXIT_DISCONNECTED,
                                     EXIT_OK,
                                     EXIT_PROTOCOL,
                                     EXIT_USAGE,
                                     Options,
                                     main,
                                     run,
)
from numberok.client.output import (formatEventJSON, formatEventLine,
                                    screenshotName)
from numberok.client.protocol import (DEFAULT_PORT, NumberOkClientProtocol,
                                      eventFields)

__all__ = ["NumberOkClientProtocol", "eventFields", "DEFAULT_PORT", "main",
           "run", "Options", "formatEventLine", "formatEventJSON",
           "screenshotName", "EXIT_OK", "EXIT_CONNECT", "EXIT_USAGE",
           "EXIT_DISCONNECTED", "EXIT_PROTOCOL"]
