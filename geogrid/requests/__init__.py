"""Residents' requests (诉求): intake, the case workflow, views, webhooks, Open311, KPIs, visits."""
