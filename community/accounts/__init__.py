"""Accounts: password reset, confirmed e-mail addresses, single sign-on with a brand's OpenID
Connect provider, two-factor sign-in, and the devices a member is signed in on."""
