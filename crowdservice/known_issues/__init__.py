"""Known-issue announcements: the support team tells customers about a problem before they ask,
keeps them updated, links the questions that report it and tells their authors when it is
fixed."""
