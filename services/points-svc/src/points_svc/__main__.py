"""`python -m points_svc` and the `points-svc` console script."""

from points_svc.main import main

if __name__ == "__main__":
    main()
