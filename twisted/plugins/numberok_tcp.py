from twisted.application.service import ServiceMaker

numberokTCP = ServiceMaker(
    "NumberOk TCP event server",
    "numberok.tap",
    "NumberOk-compatible licence-plate event server (TCP port 7700)",
    "numberok-tcp",
)
