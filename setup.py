"""
Packaging for numberok.  The plugin lives in twisted/plugins (no __init__.py
there), which is why "twisted.plugins" is listed as a package by hand.
"""

from setuptools import find_packages, setup

setup(
    name="numberok",
    version="0.1.0",
    description="NumberOk-compatible licence-plate event server on Twisted",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(exclude=["tests*", "bench*"]) + ["twisted.plugins"],
    package_data={
        "numberok": ["etc/*.ini", "web/static/*", "web/templates/*"],
        "twisted.plugins": ["numberok_tcp.py"],
    },
    include_package_data=True,
    install_requires=[
        "Twisted[tls]>=23.10",
        "zope.interface>=6.0",
        "Pillow>=10.0",
        "rapidfuzz>=3.0",
        "prometheus-client>=0.20",
        "paho-mqtt>=2.0",
        "defusedxml>=0.7",
        "msgspec>=0.18",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "pytest-timeout>=2.1",
            "hypothesis>=6.100",
            # The browser test drives Debian's /usr/bin/chromium; never
            # "playwright install".
            "playwright>=1.40",
        ],
    },
    entry_points={
        "console_scripts": [
            "numberok-client = numberok.client:main",
            "numberok-demo-record = numberok.sources.demo:recordMain",
            "numberok-passwd = numberok.passwd:main",
        ],
    },
)
