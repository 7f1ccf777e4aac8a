from imagetrail.cli import main

main()
