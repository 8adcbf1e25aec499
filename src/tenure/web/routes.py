"""The dashboard's pages in one router, for the app to include. Each page area has its
module and router: sign-in (auth_pages), the portfolio, the accounts pages, System and
Settings (settings), Settings' outbound webhooks (webhooks); what they share is in pages.
The churn pages (tenure.web.churn) are included by the app beside this router."""

from __future__ import annotations

from fastapi import APIRouter

from tenure.web import accounts, auth_pages, portfolio, settings, webhooks

router = APIRouter(include_in_schema=False)
router.include_router(auth_pages.router)
router.include_router(portfolio.router)
router.include_router(accounts.router)
router.include_router(settings.router)
router.include_router(webhooks.router)
