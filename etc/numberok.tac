# Run with:  twistd -ny etc/numberok.tac
# The same service tree as `twistd numberok-tcp`; edit the option list below
# the way you would write the command line.
from twisted.application.service import Application

from numberok.tap import Options, makeService

options = Options()
options.parseOptions(["--config", "numberok.ini"])

application = Application("numberok")
makeService(options).setServiceParent(application)
