from dsconv_cli.cli import main

main()
