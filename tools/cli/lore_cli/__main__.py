from lore_cli.main import main

main()
