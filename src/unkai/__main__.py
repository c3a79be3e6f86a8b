from unkai.cli.main import main

main()
