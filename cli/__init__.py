"""The operator's command line (`sluice`) and the one-command start (`python3 dev.py up`)."""
