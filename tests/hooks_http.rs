//! Hooks granted HTTP (issue 12): placeholder until the guests land.
