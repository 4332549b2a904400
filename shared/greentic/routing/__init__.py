"""The router: tenant/team/channel → flow."""
