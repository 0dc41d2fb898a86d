"""`python -m analytics_svc` and the `analytics-svc` console script."""

from analytics_svc.main import main

if __name__ == "__main__":
    main()
