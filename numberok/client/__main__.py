"""C{python -m numberok.client}: the C{numberok-client} command."""

from numberok.client.command import main

main()
