from oncorwe.cli.app import main

main()
