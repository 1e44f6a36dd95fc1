from dsconv_cli.cli.app import main

main()
