"""`python -m member_svc` and the `member-svc` console script."""

from member_svc.main import main

if __name__ == "__main__":
    main()
