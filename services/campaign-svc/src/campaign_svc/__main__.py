"""`python -m campaign_svc` and the `campaign-svc` console script."""

from campaign_svc.main import main

if __name__ == "__main__":
    main()
