"""`python -m tier_svc` and the `tier-svc` console script."""

from tier_svc.main import main

if __name__ == "__main__":
    main()
