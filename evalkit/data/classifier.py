"""Seeded generator of customer-support classification data.

Every example asks a model to label one customer message with a JSON object::

    {"severity": ..., "category": ..., "urgency": ..., "sentiment": ...,
     "recommended_action": ...}

Generation samples the latent labels first (category, a *situation* kind and a
tone), derives severity, urgency and recommended action from fixed rules, and
only then composes the message from parts: a situation phrasing with slot
values, an optional greeting, context sentence, "what I tried" sentence,
deadline/emergency clause (critical non-fraud only), tone phrase and sign-off,
plus occasional typos in filler words. Labels therefore stay derivable from the
text while surface forms vary enough that memorising templates is not enough.

Label rules (also written to ``data/classifier/README.md``):

* severity: ``critical`` for fraud or a security breach, or when the customer
  is blocked / has lost money AND states a deadline or emergency; ``high`` when
  blocked or money was lost without an emergency; ``medium`` when something
  works wrong but there is a workaround or the service is only degraded;
  ``low`` for a request or a question.
* urgency: critical -> immediate, high -> same_day, medium/low -> routine.
* recommended_action: critical/high -> escalate_to_agent, medium ->
  create_ticket, low -> self_service.
* sentiment: the customer's tone (distressed, frustrated, neutral, positive).
* category: the topic of the message.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from evalkit.data.near_duplicates import DEFAULT_THRESHOLD, find_near_duplicates, normalize_text

__all__ = [
    "CLASSIFIER_INSTRUCTION",
    "DEFAULT_COUNT",
    "DEFAULT_EVAL_FRACTION",
    "DEFAULT_SEED",
    "FIELD_VALUES",
    "OUTPUT_FIELDS",
    "SITUATIONS",
    "canonical_output",
    "derive_labels",
    "generate_examples",
    "render_readme",
    "split_examples",
    "write_classifier_data",
]

CLASSIFIER_INSTRUCTION = "Classify this customer message by severity and category"

OUTPUT_FIELDS: tuple[str, ...] = (
    "severity",
    "category",
    "urgency",
    "sentiment",
    "recommended_action",
)

FIELD_VALUES: dict[str, tuple[str, ...]] = {
    "severity": ("critical", "high", "medium", "low"),
    "category": ("account_access", "billing", "shipping", "technical", "general_inquiry"),
    "urgency": ("immediate", "same_day", "routine"),
    "sentiment": ("distressed", "frustrated", "neutral", "positive"),
    "recommended_action": ("escalate_to_agent", "create_ticket", "self_service"),
}

# Latent situation kinds, from most to least severe.
SITUATIONS: tuple[str, ...] = ("fraud", "emergency", "blocked", "degraded", "request")

DEFAULT_COUNT = 800
DEFAULT_SEED = 20261128
DEFAULT_EVAL_FRACTION = 0.1

_SEVERITY_BY_SITUATION: dict[str, str] = {
    "fraud": "critical",
    "emergency": "critical",
    "blocked": "high",
    "degraded": "medium",
    "request": "low",
}
_URGENCY_BY_SEVERITY: dict[str, str] = {
    "critical": "immediate",
    "high": "same_day",
    "medium": "routine",
    "low": "routine",
}
_ACTION_BY_SEVERITY: dict[str, str] = {
    "critical": "escalate_to_agent",
    "high": "escalate_to_agent",
    "medium": "create_ticket",
    "low": "self_service",
}

# Share of each situation kind per category. Fraud and emergencies are rarer for
# general inquiries, so the others carry a bit more; overall this gives about
# 20% critical, 24% high, 25% medium, 31% low.
_SITUATION_WEIGHTS: dict[str, dict[str, float]] = {
    "account_access": {"fraud": 0.12, "emergency": 0.12, "blocked": 0.26, "degraded": 0.20, "request": 0.30},
    "billing": {"fraud": 0.14, "emergency": 0.10, "blocked": 0.28, "degraded": 0.20, "request": 0.28},
    "shipping": {"fraud": 0.06, "emergency": 0.14, "blocked": 0.26, "degraded": 0.26, "request": 0.28},
    "technical": {"fraud": 0.06, "emergency": 0.14, "blocked": 0.26, "degraded": 0.30, "request": 0.24},
    "general_inquiry": {"fraud": 0.04, "emergency": 0.06, "blocked": 0.14, "degraded": 0.28, "request": 0.48},
}

# Tone given the situation: mostly plausible pairings, but every tone occurs with
# every situation so that tone and severity are not confounded (a polite
# customer with a real emergency, an angry one with a trivial question).
_SENTIMENT_WEIGHTS: dict[str, dict[str, float]] = {
    "fraud": {"distressed": 0.42, "frustrated": 0.28, "neutral": 0.20, "positive": 0.10},
    "emergency": {"distressed": 0.40, "frustrated": 0.25, "neutral": 0.20, "positive": 0.15},
    "blocked": {"distressed": 0.18, "frustrated": 0.40, "neutral": 0.27, "positive": 0.15},
    "degraded": {"distressed": 0.10, "frustrated": 0.34, "neutral": 0.34, "positive": 0.22},
    "request": {"distressed": 0.08, "frustrated": 0.18, "neutral": 0.44, "positive": 0.30},
}

# ---------------------------------------------------------------------------
# Situation phrasings: category -> pool -> situations -> phrasings.
# The "blocked" pool is shared by high (no deadline) and critical (plus a
# deadline/emergency clause) examples. Phrasings carry no tone and no deadline
# words, so those signals come only from the parts added around them.
# ---------------------------------------------------------------------------
_Bank = dict[str, dict[str, tuple[tuple[str, ...], ...]]]

_BANK: _Bank = {
    "account_access": {
        "fraud": (
            (
                "Someone logged into my account from {country} and changed my email address.",
                (
                    "I got an alert about a login from {country} that wasn't "
                    "me, and now my email and password have been changed."
                ),
                "My account has been taken over. Somebody changed the email on it and I can't get back in.",
            ),
            (
                "My account was hacked and there are orders on it that I never placed.",
                "Someone broke into my account and placed {n} orders with my saved card.",
                "There are purchases in my account history I never made, someone must have my login.",
            ),
            (
                (
                    "I just got a 'your password was changed' email that "
                    "I didn't request, and my password no longer works."
                ),
                ("Someone reset my password without my permission. I never asked for a reset and now I'm locked out."),
            ),
            (
                "My account shows active sessions on devices I don't own, someone else is using it.",
                "I see logins from a {device} in {country} on my account page. That is not me.",
                "There's a session on my account from {country} right now and I've never been there.",
            ),
            (
                "Someone removed my phone number from my account and turned off two-factor authentication.",
                ("Two-factor was switched off on my account and the recovery phone is a number I don't recognise."),
            ),
            (
                (
                    "I typed my password into a fake login page pretending "
                    "to be you, and now someone has accessed my account."
                ),
                (
                    "I fell for a phishing email and whoever sent it used "
                    "my login to get into my account and change my details."
                ),
            ),
            (
                ("Somebody changed the shipping address and added a new card on my account, none of it was me."),
                ("My saved payment details were changed by someone who got into my account without my permission."),
            ),
            (
                "When I logged in I saw another person's name, address and order history instead of mine.",
                (
                    "I logged in and I'm looking at someone else's account "
                    "with all their personal details. That's a data breach."
                ),
            ),
        ),
        "blocked": (
            (
                "My account is locked after too many login attempts and the unlock link doesn't work.",
                (
                    "I'm locked out of my account. It says 'too many attempts' "
                    "and it has been like that for {days} days."
                ),
                "I can't get into my account at all, it keeps saying it's locked.",
            ),
            (
                "The password reset email never arrives. I've requested it {n} times and checked spam.",
                "I can't log in because the reset link never shows up in my inbox.",
                "No password reset email ever reaches me, so I have no way to sign in.",
            ),
            (
                "I'm not receiving the two-factor code by text, so I can't log in at all.",
                "The verification code never comes to my phone and I'm stuck on the login screen.",
            ),
            (
                "I got a new phone and lost my authenticator app, so I can't get past two-factor.",
                "My phone was replaced and the authenticator codes are gone. I have no way into my account.",
            ),
            (
                "My account was suspended without any explanation and I can't access anything.",
                ("I tried to log in and got 'account disabled'. I haven't done anything wrong and now I can't use it."),
                "Your system deactivated my account and I can't sign in to find out why.",
            ),
            (
                "I reset my password and the new one is rejected every time I try to sign in.",
                "It says my password is incorrect even right after I changed it, I can't sign in.",
            ),
            (
                ("My account is tied to an old work email I no longer have, so I can't log in or reset anything."),
                ("I can't sign in because the account email belongs to a job I left and I can't receive the codes."),
            ),
            (
                "Signing in with Google just loops back to the login page, I can't get into my account.",
                "'Sign in with Apple' gives an error every time and it's the only way I have to log in.",
            ),
            (
                (
                    "My account says my email isn't verified, but every verification "
                    "link you send has already expired, so I can't use the account."
                ),
                (
                    "I can't finish verifying my email because the links "
                    "are always expired, and the account stays blocked."
                ),
            ),
        ),
        "degraded": (
            (
                "Logging in takes almost a minute, but it does work eventually.",
                "Sign-in is really slow lately. It gets there in the end, it's just slow.",
            ),
            (
                "The two-factor code arrives late, I usually have to request it twice before I can get in.",
                ("Verification codes come through a few minutes late, so I request another one, but I do get in."),
            ),
            (
                "The 'remember me' box doesn't do anything, so I have to log in every time. Not a big deal.",
                (
                    "I'm logged out every time I close the browser even though "
                    "I tick 'keep me signed in'. Logging in again works."
                ),
            ),
            (
                "The app keeps logging me out, but I can still sign in fine on the website.",
                ("I get signed out of the app on my {device} every day. Logging back in works, it's just a hassle."),
            ),
            (
                ("The password reset page doesn't load in {browser}; it worked when I switched to another browser."),
                "Resetting my password failed in {browser} but went through in a private window.",
            ),
            (
                "My profile still shows my old email address, although the emails do arrive at the new one.",
                ("The account page shows my old phone number even though I updated it. The codes go to the new one."),
            ),
            (
                "Sign-in alert emails keep landing in my spam folder. I can still find them there.",
                ("Your security emails go straight to spam for some reason, I've been fishing them out manually."),
            ),
            (
                ("My profile picture won't update, it still shows the old one. Everything else on the account works."),
                ("I can't change my display name, it reverts after saving. I can live with the old one for now."),
            ),
        ),
        "request": (
            (
                "How do I change the email address on my account?",
                "What's the process for updating my login email?",
                "Can I switch my account over to a different email address?",
            ),
            (
                "Can I add a second user to my account?",
                "Is it possible to share my account with my partner but with separate logins?",
            ),
            (
                "How do I turn on two-factor authentication?",
                "Where do I set up an authenticator app for my account?",
            ),
            (
                "I'd like to delete my account. What's the process?",
                "How can I close my account permanently?",
                "Could you tell me how to remove my account and all my data?",
            ),
            (
                "Can I change my username?",
                "Is it possible to pick a new username without making a new account?",
            ),
            (
                "Is there a way to see which devices are logged into my account?",
                "Where can I check my active sessions?",
            ),
            (
                "I have two accounts, can they be merged into one?",
                "Is it possible to combine my old account and my new one?",
            ),
            (
                "What are the password requirements? I want to pick a stronger one.",
                "Is there a minimum password length, and can I use a passphrase?",
            ),
            (
                "Can I log in with Google instead of a password?",
                "Do you support signing in with Apple?",
            ),
        ),
    },
    "billing": {
        "fraud": (
            (
                "There's a charge of {amount} on my card that I didn't make.",
                "I see a {amount} payment to you on my statement that I never authorised.",
                "Someone charged {amount} to my card through your site and it wasn't me.",
            ),
            (
                "My card was used on your site for purchases I never made, {n} charges so far.",
                "Several purchases I didn't make were billed to my card ending in {last4}.",
            ),
            (
                "I was billed for a {plan} subscription I never signed up for.",
                "Somebody opened a {plan} plan with my card. I never agreed to this.",
            ),
            (
                "Someone used my stored card to buy gift cards on my account.",
                "Gift cards worth {amount} were bought with my saved card and I didn't buy them.",
            ),
            (
                "My bank flagged a {amount} charge from your company as fraud. I didn't make it.",
                "My bank called about a suspicious {amount} payment to you that I know nothing about.",
            ),
            (
                ("My refund of {amount} went to a bank account that isn't mine; someone changed my payout details."),
                "A refund meant for me was sent to a different bank account I don't recognise.",
            ),
            (
                ("Someone changed the billing details on my account and is charging their purchases to my card."),
                (
                    "An unknown card holder name appeared on my billing profile "
                    "and new charges are going through on my card."
                ),
            ),
            (
                ("I received a receipt for {amount} for a purchase I never made, and the money has left my account."),
                (
                    "There's an unauthorized charge of {amount} from you on "
                    "my bank account and I got a receipt I don't recognise."
                ),
            ),
        ),
        "blocked": (
            (
                "I was charged twice for the same order, {amount} each time.",
                "You took {amount} from my account two times for one purchase.",
                "Double charge on my card for order {order}, {amount} twice.",
            ),
            (
                "I returned my item {days} days ago and still haven't received my {amount} refund.",
                "My refund of {amount} was approved weeks ago and never arrived.",
                "Still no refund for order {order}. It's been {days} days since you confirmed it.",
            ),
            (
                "I cancelled my subscription but you charged me {amount} again this month.",
                "I was billed {amount} for the {plan} plan after I cancelled it.",
            ),
            (
                "Every payment I try fails at checkout, so I can't complete my order.",
                ("My card keeps getting declined on your site although it works everywhere else, so I can't pay."),
            ),
            (
                "My {plan} plan was downgraded for non-payment, but the payment went through on my bank.",
                "You suspended my subscription saying I didn't pay, but {amount} left my account on time.",
            ),
            (
                "I was charged {amount} instead of the price shown at checkout.",
                ("The amount taken from my card is far more than my order total, I was overcharged by {amount}."),
            ),
            (
                "I cancelled order {order} before it shipped and was still charged {amount}.",
                "You charged me {amount} for an order I cancelled the same day.",
            ),
            (
                "The {amount} balance on my gift card disappeared and I can't use it.",
                "My store credit of {amount} is gone from my account.",
            ),
        ),
        "degraded": (
            (
                "My invoice shows the wrong company address. I can use it for now, but it needs correcting.",
                "The address on my invoices is outdated; not a problem this month, but please update it.",
            ),
            (
                "The billing page doesn't load in the app, so I updated my card on the website instead.",
                "I can't open billing settings in the app. The website works, so I used that.",
            ),
            (
                "The promo code didn't apply automatically, but it worked when I typed it again.",
                "My discount code failed the first time and only went through on the second try.",
            ),
            (
                "I get the monthly receipt about a week late. The charge itself is fine.",
                "Receipts are arriving days after the payment. The amounts are correct though.",
            ),
            (
                (
                    "The currency on my invoice shows as dollars instead "
                    "of euros, though the amount charged was correct."
                ),
                "My invoice lists the wrong currency symbol. The charge on my card was right.",
            ),
            (
                ("Downloading invoices as PDF gives an error; I can still see them on screen and take screenshots."),
                "The 'download invoice' button throws an error, so I've been printing the page instead.",
            ),
            (
                ("My card's expiry date won't save in settings, but the payment still went through this month."),
                ("Updating my card details shows an error message, although the new card was charged correctly."),
            ),
            (
                (
                    "The billing history only shows the last three months. "
                    "I need older ones but I can find them in my email."
                ),
                "Older invoices are missing from my billing history; I have copies in my inbox for now.",
            ),
        ),
        "request": (
            (
                "Can I get an invoice with my company's VAT number on it?",
                "How do I add a tax ID to my invoices?",
            ),
            (
                "How do I switch from monthly to annual billing?",
                "Is there a discount if I pay yearly instead of monthly?",
            ),
            (
                "Do you accept PayPal?",
                "Which payment methods do you take?",
                "Can I pay by bank transfer?",
            ),
            (
                "When exactly will I be charged for my {plan} plan each month?",
                "What day of the month does the {plan} subscription renew?",
            ),
            (
                "How do I update the card on my account?",
                "Where can I change my payment method?",
            ),
            (
                "Is there a student discount?",
                "Do you offer any discounts for non-profits?",
            ),
            (
                "Can I pay for my order in installments?",
                "Do you offer buy now, pay later?",
            ),
            (
                "What's your refund policy for subscriptions?",
                "If I cancel halfway through the month, do I get part of my money back?",
            ),
        ),
    },
    "shipping": {
        "fraud": (
            (
                "Someone changed the delivery address on my order to an address I don't know.",
                (
                    "The delivery address on order {order} was changed "
                    "to somewhere I've never heard of, and it wasn't me."
                ),
            ),
            (
                "My package was redirected to another address by someone who got into my account.",
                "Someone accessed my account and rerouted my delivery to a different city.",
            ),
            (
                ("I got shipping confirmations for orders I never placed, going to an address I don't recognise."),
                ("There are {n} shipments on my account heading to a stranger's address. I didn't order any of them."),
            ),
            (
                (
                    "A fake courier text made me pay a 'redelivery fee' on a copy "
                    "of your site, and now there are more charges on my card."
                ),
                (
                    "A man claiming to be your courier asked for my card details "
                    "to release my parcel, and money was taken afterwards."
                ),
            ),
            (
                "Someone used my account to send items to a different address with my saved card.",
                "Orders were placed from my account with my card and shipped to someone else.",
            ),
            (
                (
                    "The parcel locker code for my delivery was sent to a number "
                    "that isn't mine and someone collected the parcel."
                ),
                ("My pickup code was sent to a stranger's phone and my parcel was collected by someone I don't know."),
            ),
        ),
        "blocked": (
            (
                "My package says delivered but it's not here.",
                "Tracking says my order was delivered yesterday, but nothing arrived.",
                "Order {order} is marked as delivered and I never got it.",
            ),
            (
                "Tracking hasn't updated in {days} days, my order {order} seems lost.",
                "My parcel has been stuck at the same depot for {days} days and nobody knows where it is.",
            ),
            (
                "The box arrived empty.",
                "I opened the package and the {product} wasn't in it, just packing paper.",
            ),
            (
                "I got the wrong item, and the {product} I paid for is nowhere.",
                "You sent me someone else's order instead of my {product}.",
            ),
            (
                "The courier returned my parcel to you saying the address doesn't exist, but it's correct.",
                "My order was sent back as 'address not found' even though I've lived here for years.",
            ),
            (
                "My {product} arrived smashed and can't be used.",
                "The {product} came broken in several pieces, it's completely unusable.",
            ),
            (
                "My parcel has been stuck in customs for {days} days and nobody can tell me anything.",
                "Customs is holding my order {order} and I can't get any information from the carrier.",
            ),
            (
                "My delivery was cancelled without explanation and I still don't have my {product}.",
                "The courier cancelled my shipment and I've paid for a {product} I don't have.",
            ),
        ),
        "degraded": (
            (
                "My package is running {n} days late, but the tracking is still moving.",
                "Delivery is a few days behind the estimate. Tracking shows it's on its way.",
            ),
            (
                (
                    "The courier left my parcel with a neighbour instead "
                    "of at my door. I got it, but I'd rather they didn't."
                ),
                "My package was left at the shop down the street without a note. I found it in the end.",
            ),
            (
                "The tracking link shows an error, although the parcel arrived fine.",
                "Your tracking page never updated, but the {product} showed up on time anyway.",
            ),
            (
                "Only part of my order arrived; the rest is supposedly on its way separately.",
                "I got two of the three items. The email says the last one ships separately.",
            ),
            (
                "My delivery slot was moved to a later day without asking me. I can work with it this time.",
                "The delivery date changed to next week without any notice. It's not a disaster.",
            ),
            (
                "The box was badly dented, but the {product} inside seems to work fine.",
                "The packaging was crushed when it arrived. The {product} survived.",
            ),
            (
                ("The delivery notification texts stopped, so I'm checking the tracking page manually instead."),
                "I no longer get shipping emails. I can still look the order up on the website.",
            ),
            (
                ("The driver keeps leaving parcels at the back door instead of the front. I find them, but it's odd."),
                "Your courier always rings the wrong flat. The neighbours pass my parcels on.",
            ),
        ),
        "request": (
            (
                "Do you ship to {country}?",
                "Is international delivery to {country} possible?",
            ),
            (
                "How long does standard delivery usually take?",
                "What's the normal delivery time for an order?",
            ),
            (
                "Can I change the delivery address on an order that hasn't shipped yet?",
                "Is it possible to update the address on order {order} before it goes out?",
            ),
            (
                "Is there an option for express shipping?",
                "Do you offer next-day delivery?",
            ),
            (
                "How much does shipping cost for orders under {amount}?",
                "Is shipping free above a certain amount?",
            ),
            (
                "Can I pick up my order from a store instead of having it delivered?",
                "Do you have click and collect?",
            ),
            (
                "How do I get a return label?",
                "What's the process for sending an item back?",
            ),
            (
                "Do you deliver on weekends?",
                "Can I choose a Saturday delivery slot?",
            ),
        ),
    },
    "technical": {
        "fraud": (
            (
                ("Our API key was leaked and someone is making calls with it. I can see requests we didn't send."),
                "Someone is using our API credentials; the logs show thousands of calls that aren't ours.",
            ),
            (
                "I can see another customer's files in my dashboard. That looks like a serious data leak.",
                ("Your app is showing me documents that belong to a different company. This is a security breach."),
            ),
            (
                ("Your app sent me someone else's personal data in a notification: name, address, phone number."),
                "I received a push notification with another user's private details in it.",
            ),
            (
                ("The installer from your download page was flagged as a trojan by my antivirus after I ran it."),
                "Your download link served a file with malware in it and my laptop was infected.",
            ),
            (
                "Someone connected an unknown integration to our workspace and is exporting our data.",
                "An app we never authorised has access to our workspace and is pulling our files.",
            ),
            (
                "Our workspace was accessed by someone outside the company and they deleted our projects.",
                "An unknown user got admin access to our team account and removed everyone else.",
            ),
            (
                "The share link feature made my private documents public, and strangers have viewed them.",
                ("Files I never shared are showing up as public, and the view counter shows people opened them."),
            ),
            (
                (
                    "I got a security alert that my stored data was downloaded "
                    "from an IP in {country}. We didn't do that."
                ),
                "Your audit log shows a bulk export from {country} last night that none of us made.",
            ),
        ),
        "blocked": (
            (
                "The app crashes as soon as I open it on my {device}.",
                "The app closes immediately every time I launch it on my {device}.",
                "I can't use the app at all, it crashes on start on my {device}.",
            ),
            (
                "The website shows a 500 error on every page, I can't use it at all.",
                "Every page of your site gives me a server error.",
            ),
            (
                "My data won't sync and the app only shows a blank screen.",
                "Since yesterday the app shows a blank screen and none of my data loads.",
            ),
            (
                "After the latest update, the app won't start at all.",
                "The new version of the app is stuck on the loading screen forever.",
            ),
            (
                "The checkout button does nothing when I click it, so I can't place any order.",
                "Your checkout page freezes on the last step every time and never finishes.",
            ),
            (
                "All my saved projects disappeared after the update.",
                "My files are gone from the app after the last update, {n} months of work.",
            ),
            (
                "The export function fails every time and I can't get my data out.",
                "Every export ends with 'something went wrong' and there's no other way to get my data.",
            ),
            (
                "Our integration stopped working, the API returns 401 for every request.",
                "Every API call we make now fails with an authentication error, nothing gets through.",
            ),
            (
                "I can't upload any files, every upload fails at 99%.",
                "Uploads fail every single time, on every network I've tried.",
            ),
        ),
        "degraded": (
            (
                "The app is very slow to load, though it works after a while.",
                "Pages take ages to open in the app, but they do open eventually.",
            ),
            (
                "Notifications are delayed by an hour or so, but they do come through.",
                "Push notifications arrive late. I still get them, just not on time.",
            ),
            (
                "Dark mode resets every time I restart the app. I just switch it back on.",
                "The app forgets my theme setting after each restart, which is a small annoyance.",
            ),
            (
                "The search returns odd results; I can still find things by scrolling.",
                "Search doesn't find my older notes, but browsing the folders works.",
            ),
            (
                "The app sometimes crashes when I rotate my {device}, but it reopens fine.",
                "Turning my {device} sideways makes the app crash now and then; reopening it fixes it.",
            ),
            (
                "Calendar sync is a few hours behind. A manual refresh fixes it.",
                "My events take hours to sync unless I pull to refresh, then they show up.",
            ),
            (
                "Uploading photos fails on mobile data but works on wifi.",
                "Photo uploads only work when I'm on wifi, so I wait until I'm home.",
            ),
            (
                "The site layout is broken in {browser}; it's fine in another browser.",
                "Buttons overlap on your website in {browser}. Everything works if I switch browsers.",
            ),
        ),
        "request": (
            (
                "Does the app work on a {device}?",
                "Is there a version of the app for my {device}?",
            ),
            (
                "How do I export my data to a CSV file?",
                "Can I download all my data as a spreadsheet?",
            ),
            (
                "Is there a dark mode?",
                "Can I change the app's theme?",
            ),
            (
                "Can I use the app offline?",
                "Does the app still work without an internet connection?",
            ),
            (
                "Do you have an API I can connect to?",
                "Where can I find your API documentation?",
            ),
            (
                "How do I turn off notifications?",
                "Can I mute the daily reminder emails from the app?",
            ),
            (
                "Which browsers do you support?",
                "Does your site work in {browser}?",
            ),
            (
                "Is there a desktop version of the app?",
                "Do you have a Windows or Mac app, or only mobile?",
            ),
        ),
    },
    "general_inquiry": {
        "fraud": (
            (
                "A fake website using your brand name took {amount} from me for an order that never existed.",
                "I paid {amount} on a site that copied your logo and name. It was a scam.",
            ),
            (
                (
                    "Someone called me pretending to be from your company and "
                    "got my card details. Now there are charges I didn't make."
                ),
                ("A caller claiming to be your staff talked me into giving my bank details and then took money."),
            ),
            (
                (
                    "A social media account impersonating you ran a giveaway "
                    "and I paid a {amount} 'fee'. They took the money."
                ),
                "A fake profile using your company name scammed me out of {amount} with a prize message.",
            ),
            (
                "Scammers sent me a letter with your logo saying I owed money, and I paid it.",
                "I paid a fake invoice with your company letterhead on it. It was fraud.",
            ),
            (
                (
                    "My personal details from your loyalty program are "
                    "being used in scam calls. Someone has leaked them."
                ),
                (
                    "Scammers knew my loyalty card number and my purchase history "
                    "from your store, so your customer data has been breached."
                ),
            ),
            (
                "Someone is selling fake gift cards in your name and I bought {amount} worth.",
                ("I bought gift cards for your store from a reseller and they were counterfeit. I lost {amount}."),
            ),
        ),
        "blocked": (
            (
                "Your store refused to honour my warranty and my {product} is unusable.",
                ("The {product} I bought from you broke within the warranty period and your staff won't replace it."),
            ),
            (
                (
                    "I've called your customer service {n} times and never "
                    "get through, so I can't even start my warranty claim."
                ),
                ("Your phone line hangs up on me every time and there's no other way to start a warranty claim."),
            ),
            (
                "All {n}00 of my loyalty points disappeared and I can't redeem anything.",
                "My loyalty points balance dropped to zero overnight, I'd saved them for a year.",
            ),
            (
                "The repair centre has had my {product} for {days} days and no one can tell me where it is.",
                "I sent my {product} in for repair {days} days ago and it seems to have vanished.",
            ),
            (
                "The voucher you sent as compensation is rejected in every store.",
                "The {amount} voucher from your complaints team doesn't scan at any till.",
            ),
            (
                "I was promised a replacement {product} under warranty {days} days ago and it never came.",
                "My warranty replacement was approved weeks ago and I still have no working {product}.",
            ),
        ),
        "degraded": (
            (
                ("Your store locator shows the wrong opening hours for the {city} branch. I called to check instead."),
                "The website lists the {city} store as open on Sundays, it isn't. I found out by phoning.",
            ),
            (
                "The contact form on your site gives an error, so I'm writing here instead.",
                "Your contact form won't submit. Sending this by email.",
            ),
            (
                "Several links in your FAQ are broken; I found the answers through a search engine.",
                "Your help pages have dead links, though I managed to find what I needed elsewhere.",
            ),
            (
                "The newsletter unsubscribe link doesn't work. I'm filtering the emails out for now.",
                (
                    "I clicked unsubscribe twice and still get your newsletter. "
                    "Not a big issue, just a mail filter for now."
                ),
            ),
            (
                "The live chat closes on me after a few minutes, so I'm emailing instead.",
                "Your chat window keeps disconnecting, but email seems to work.",
            ),
            (
                "The product manual link on your site is dead; I found an old copy on a forum.",
                "I couldn't download the manual for my {product} from you, a user forum had it.",
            ),
            (
                "The loyalty points page shows the wrong balance, but the points still work at the till.",
                "My points balance online is off by a few hundred. The store sees the right number.",
            ),
            (
                (
                    "The phone line's hold music keeps cutting out, so I wasn't "
                    "sure I was still connected. I got through in the end."
                ),
                ("Your phone menu loops back to the start twice before it connects, but it does connect eventually."),
            ),
        ),
        "request": (
            (
                "What are your opening hours on public holidays?",
                "Are you open on bank holidays?",
            ),
            (
                "Do you have a store in {city}?",
                "Is there a branch near {city}?",
            ),
            (
                "What's the warranty on a {product}?",
                "How long is the guarantee on your {product}s?",
            ),
            (
                "Do you offer gift wrapping?",
                "Can you gift-wrap an order and add a card?",
            ),
            (
                "Are you hiring for the summer?",
                "Where can I see job openings at your company?",
            ),
            (
                "How do I join your loyalty program?",
                "What are the benefits of your membership card?",
            ),
            (
                "Do you have a corporate partnership program?",
                "Who should I talk to about a business partnership with you?",
            ),
            (
                "Where can I read your privacy policy?",
                "What do you do with my personal data?",
            ),
            (
                "Do you sell refurbished {product}s?",
                "Do you have a recycling scheme for old {product}s?",
            ),
        ),
    },
}

# Deadline / emergency material, used only for "emergency" situations (critical
# non-fraud). Phrasings and tone phrases contain none of these signals. A clause
# is assembled from a reason and a time frame so that clauses rarely repeat.
_EMERGENCY_REASONS_GENERIC: tuple[str, ...] = (
    "I'm leaving on a trip early tomorrow",
    "I'm travelling tonight",
    "I have a hard deadline in {hours} hours",
    "I'm out of the country from tomorrow",
    "I start a new job on {weekday} and need it for that",
)
_EMERGENCY_REASONS: dict[str, tuple[str, ...]] = {
    "account_access": (
        "my boarding pass is in that account and I board in {hours} hours",
        "I have to submit a tax form through this account before midnight",
        "all my work is in there and I present to a client in an hour",
        "the tickets for a concert at {time} tonight are in that account",
        "I have to sign a contract in there before the end of the day",
        "my prescription refill has to be ordered through it today",
    ),
    "billing": (
        "that money was for my rent, which is due today",
        "my account is now overdrawn and my mortgage payment goes out tomorrow morning",
        "I need that money to pay for my child's medicine today",
        "my bills are due by {time} today and I can't cover them",
        "I have nothing left for groceries this week",
        "my business account has to cover payroll tonight",
    ),
    "shipping": (
        "it's my daughter's medication and she needs it tonight",
        "the wedding is tomorrow and that's the dress",
        "my passport is in it and I fly on {weekday}",
        "it's a present for a birthday party tomorrow afternoon",
        "it's the part I need to get my car running for work tomorrow",
        "it's insulin for my dad and he runs out tonight",
    ),
    "technical": (
        "we have a client demo in {hours} hours",
        "our online store runs on this and we're losing orders every minute of our biggest sale",
        "I have an exam submission due at midnight and all my work is in the app",
        "our whole team is stuck and we launch at {time} today",
        "payroll has to go out through it tonight",
        "I'm presenting from it at a conference in {hours} hours",
    ),
    "general_inquiry": (
        "my insurance claim deadline is tomorrow",
        "it's my only heater and it's freezing at night this week",
        "the paperwork is due tomorrow morning",
        "I'm moving abroad on {weekday} and need this settled first",
    ),
}
_EMERGENCY_WHEN: tuple[str, ...] = (
    "today",
    "before {time} today",
    "within the next {hours} hours",
    "by tomorrow morning at the latest",
    "tonight",
    "right now",
    "in the next hour",
)
_EMERGENCY_VERBS: tuple[str, ...] = ("fixed", "sorted", "resolved", "sorted out", "dealt with")


def _emergency_clause(rng: random.Random, category: str) -> str:
    """Compose a sentence stating a deadline or an emergency."""
    reasons = _EMERGENCY_REASONS[category] + _EMERGENCY_REASONS_GENERIC
    reason = rng.choice(reasons)
    need = f"I need this {rng.choice(_EMERGENCY_VERBS)} {rng.choice(_EMERGENCY_WHEN)}"
    alarm = rng.choice(("This is an emergency", "It is an emergency", "This is urgent"))
    form = rng.randrange(5)
    if form == 0:
        return f"{need}, {reason}."
    if form == 1:
        return f"{_capitalize(reason)}, so {need}."
    if form == 2:
        return f"{alarm}: {reason}."
    if form == 3:
        return f"{_capitalize(reason)}. {alarm}."
    # A category reason on its own already names a concrete deadline or emergency.
    return f"{_capitalize(rng.choice(_EMERGENCY_REASONS[category]))}."


# Tone material: each tone has full sentences plus "stem + tail" combinations so
# that tone phrases vary without carrying any severity signal.
_TONE_SENTENCES: dict[str, tuple[str, ...]] = {
    "distressed": (
        "This is terrifying.",
        "This is a nightmare.",
        "I feel sick about this.",
        "Please, please help.",
        "I'm begging you, please help.",
        "Somebody please help me with this.",
        "I don't know what to do.",
    ),
    "frustrated": (
        "This is ridiculous.",
        "This is unacceptable.",
        "Absolutely useless service.",
        "What a waste of my time.",
        "Seriously, what is going on with your company?",
        "This is the third time I'm writing about this.",
        "Why is this so hard?",
        "Not impressed at all.",
        "Your service is a joke.",
        "Unbelievable.",
        "Do better.",
        "Honestly, this is pathetic.",
    ),
    "neutral": (
        "Please advise.",
        "Please let me know.",
        "Looking forward to your reply.",
        "Please get back to me.",
        "Let me know if you need more details.",
    ),
    "positive": (
        "You guys have always been great.",
        "I love your service.",
        "Your support has been amazing before.",
        "Big fan of your products.",
        "Keep up the great work!",
        "Love the app, by the way.",
        "You've always been brilliant with me.",
    ),
}
_TONE_STEMS: dict[str, tuple[str, ...]] = {
    "distressed": (
        "I'm panicking",
        "I'm really panicking",
        "I'm so scared",
        "I'm honestly terrified",
        "I'm worried sick",
        "I'm in a complete panic",
        "I'm beside myself",
        "I'm shaking",
        "I'm freaking out",
        "I'm really frightened",
        "I'm so anxious",
        "I'm in tears",
    ),
    "frustrated": (
        "I'm fed up",
        "I'm so frustrated",
        "I'm so annoyed",
        "I'm really angry",
        "I'm furious",
        "I'm losing my patience",
        "I'm done",
        "I'm really irritated",
        "I'm beyond annoyed",
    ),
    "neutral": ("Please have a look", "Let me know", "Please check", "Please reply"),
    "positive": (
        "Thanks",
        "Thank you",
        "Many thanks",
        "Thanks a lot",
        "Thanks so much",
        "Thank you so much",
        "Much appreciated",
        "Thanks heaps",
    ),
}
_TONE_TAILS: dict[str, tuple[str, ...]] = {
    "distressed": (
        ".",
        " right now.",
        " about this.",
        " here.",
        ", I don't know what to do.",
        ", I haven't slept.",
        ", please help me.",
        ", please help.",
    ),
    "frustrated": (
        ".",
        " with this.",
        " with your company.",
        " with you people.",
        " with this service.",
        "!",
        "!!",
        " with all of this.",
    ),
    "neutral": (" when you can.", ".", " at your convenience."),
    "positive": (
        "!",
        " in advance!",
        " for your help.",
        " for looking into this :)",
        " for all you do!",
        ", you guys are great!",
        ", love the app!",
        ", your team is always so helpful.",
        " in advance, big fan of your service.",
    ),
}
# Neutral closers that only fit a problem report, not a question.
_NEUTRAL_PROBLEM_SENTENCES: tuple[str, ...] = (
    "Let me know what to do next.",
    "Could you look into it?",
    "What are the next steps?",
    "Can someone check?",
    "Details are above.",
    "I'd like to get this sorted.",
)
_QUESTION_TONE: dict[str, tuple[str, ...]] = {
    # Extra tone phrases that only read naturally around a question.
    "distressed": (
        "I'm really worried I'll get this wrong.",
        "I'm so anxious about this, I'm scared of messing it up.",
    ),
    "frustrated": (
        "Why is this so hard to find on your website?",
        "I've asked this before and nobody answered.",
    ),
    "neutral": ("Just wondering.", "Quick question.", "Just curious."),
    "positive": ("Thanks, love your stuff!", "Thank you, happy customer here."),
}


def _tone_phrase(rng: random.Random, sentiment: str, is_question: bool, stems: bool = True) -> str:
    """Compose one phrase expressing ``sentiment``.

    Args:
        rng: Random source.
        sentiment: The tone to express.
        is_question: Whether the message is a question (some phrases only fit
            problem reports, others only questions).
        stems: Whether "stem + tail" combinations may be used.
    """
    sentences = _TONE_SENTENCES[sentiment]
    if sentiment == "neutral" and not is_question:
        sentences += _NEUTRAL_PROBLEM_SENTENCES
    roll = rng.random()
    if is_question and roll < 0.2:
        return rng.choice(_QUESTION_TONE[sentiment])
    if roll < 0.5 or not stems or (is_question and sentiment == "neutral"):
        # Neutral stems ("Please have a look ...") only fit problem reports.
        return rng.choice(sentences)
    return rng.choice(_TONE_STEMS[sentiment]) + rng.choice(_TONE_TAILS[sentiment])


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


_GREETINGS: tuple[str, ...] = (
    "Hi,",
    "Hello,",
    "Hey,",
    "Hi there,",
    "Good morning,",
    "Good afternoon,",
    "Dear support team,",
    "Hello support,",
    "To whom it may concern,",
    "Hiya,",
    "Hey team,",
    "Hi all,",
    "Hello there.",
    "Hi support,",
    "Evening,",
)

_SIGN_OFFS: dict[str, tuple[str, ...]] = {
    "distressed": ("Regards,", "Best,", "-", "Sincerely,"),
    "frustrated": ("Regards,", "Waiting for an answer,", "-", "Sincerely,"),
    "neutral": ("Regards,", "Best,", "Kind regards,", "Best regards,", "-", "Sincerely,"),
    "positive": ("Thanks!", "Many thanks,", "Thank you,", "Cheers,", "All the best,"),
}

_NAMES: tuple[str, ...] = (
    "Maria",
    "Tom",
    "Priya",
    "James",
    "Chen",
    "Fatima",
    "Luca",
    "Sarah",
    "Olu",
    "Hannah",
    "Diego",
    "Aisha",
    "Ben",
    "Yuki",
    "Mark",
    "Elena",
    "Sam",
    "Ingrid",
    "Raj",
    "Claire",
    "Ahmed",
    "Sofia",
    "Pete",
    "Nadia",
    "Kofi",
    "Emma",
    "Jonas",
    "Lina",
    "Carlos",
    "Grace",
)

# Neutral background sentences; they never change a label.
_CONTEXT_GENERIC: tuple[str, ...] = (
    "I've been a customer for {years} years.",
    "I've been with you since {year}.",
    "Writing from my phone, sorry for any mistakes.",
    "I'm not very good with computers.",
    "My partner set this up for me originally.",
)
_CONTEXT_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "account_access": (
        "My username is {user}.",
        "I signed up with my work email.",
        "I normally log in with Google.",
        "I've had this account for about {years} years.",
        "I mostly use the app on my {device}.",
    ),
    "billing": (
        "I'm on the {plan} plan.",
        "The card ends in {last4}.",
        "I pay monthly by card.",
        "My account is under my husband's name.",
        "I'm on the {plan} plan and pay yearly.",
    ),
    "shipping": (
        "My order number is {order}.",
        "I ordered on {weekday}.",
        "It was sent with {carrier}.",
        "I live in a block of flats.",
        "The order was a {product}.",
    ),
    "technical": (
        "I'm using the app on my {device}.",
        "I'm on the latest version of the app.",
        "I use {browser}.",
        "We're on the {plan} plan with about {n}0 users.",
        "I reinstalled the app last week.",
    ),
    "general_inquiry": (
        "I usually shop at your {city} store.",
        "I bought a {product} from you last year.",
        "I'm a member of your loyalty program.",
        "A friend recommended you to me.",
        "I live near {city}.",
    ),
}

_ATTEMPTS_PROBLEM: tuple[str, ...] = (
    "I already tried restarting everything.",
    "I've tried a couple of times already.",
    "I checked the help centre but found nothing useful.",
    "Your chatbot couldn't help with this.",
    "I tried again this morning, same thing.",
    "I've already logged out and back in.",
    "I waited a day in case it sorted itself out.",
)
_ATTEMPTS_QUESTION: tuple[str, ...] = (
    "I couldn't find this in the FAQ.",
    "I looked on your website but couldn't find an answer.",
    "The help centre didn't say.",
    "A friend asked me and I didn't know.",
)

_SLOT_CHOICES: dict[str, tuple[str, ...]] = {
    "country": (
        "Brazil",
        "Russia",
        "Vietnam",
        "Nigeria",
        "Germany",
        "Romania",
        "Indonesia",
        "Canada",
        "India",
        "Mexico",
    ),
    "device": (
        "iPhone",
        "Android phone",
        "Samsung tablet",
        "MacBook",
        "Windows laptop",
        "iPad",
        "Pixel",
        "Chromebook",
    ),
    "browser": ("Chrome", "Firefox", "Safari", "Edge"),
    "plan": ("Premium", "Family", "Pro", "Basic", "Business", "Plus"),
    # Appliances and electronics, so warranty, repair and manual phrasings fit.
    "product": (
        "soundbar",
        "coffee grinder",
        "printer",
        "desk lamp",
        "blender",
        "electric toothbrush",
        "vacuum cleaner",
        "kettle",
        "monitor",
        "air fryer",
        "speaker",
        "camera",
    ),
    "carrier": ("DHL", "UPS", "FedEx", "the postal service", "your own courier", "DPD"),
    "city": (
        "Leeds",
        "Austin",
        "Lyon",
        "Toronto",
        "Manchester",
        "Denver",
        "Dublin",
        "Porto",
        "Melbourne",
        "Glasgow",
    ),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "time": ("noon", "3pm", "5pm", "6pm", "9am", "4:30"),
    "user": ("jdoe84", "maria.k", "tom_the_builder", "p.sharma", "bluefox22", "chen.w", "sunny_day"),
}

_NO_TYPO_WORDS = frozenset({"not", "no", "never", "can't", "cannot", "don't", "didn't", "isn't", "won't"})


def derive_labels(category: str, situation: str, sentiment: str) -> dict[str, str]:
    """Derive the full label set from the latent category, situation and tone.

    Args:
        category: One of ``FIELD_VALUES["category"]``.
        situation: One of :data:`SITUATIONS`.
        sentiment: One of ``FIELD_VALUES["sentiment"]``.

    Returns:
        A dict with the five output fields in :data:`OUTPUT_FIELDS` order.

    Raises:
        ValueError: If any argument is not an allowed value.
    """
    if situation not in _SEVERITY_BY_SITUATION:
        raise ValueError(f"unknown situation {situation!r}")
    severity = _SEVERITY_BY_SITUATION[situation]
    labels = {
        "severity": severity,
        "category": category,
        "urgency": _URGENCY_BY_SEVERITY[severity],
        "sentiment": sentiment,
        "recommended_action": _ACTION_BY_SEVERITY[severity],
    }
    _validate(labels)
    return labels


def _validate(labels: Mapping[str, str]) -> None:
    if tuple(sorted(labels)) != tuple(sorted(OUTPUT_FIELDS)):
        raise ValueError(f"labels must have exactly the keys {OUTPUT_FIELDS}, got {tuple(labels)}")
    for field in OUTPUT_FIELDS:
        if labels[field] not in FIELD_VALUES[field]:
            raise ValueError(f"{field}={labels[field]!r} is not one of {FIELD_VALUES[field]}")


def canonical_output(labels: Mapping[str, str]) -> str:
    """Serialise labels as the canonical JSON target string.

    Args:
        labels: Mapping with exactly the keys in :data:`OUTPUT_FIELDS`, each an
            allowed value from :data:`FIELD_VALUES`; key order does not matter.

    Returns:
        ``json.dumps`` of the labels with keys in :data:`OUTPUT_FIELDS` order
        and default separators, e.g. ``{"severity": "critical", ...}``.

    Raises:
        ValueError: If keys are missing or extra, or a value is not allowed.
    """
    _validate(labels)
    return json.dumps({field: labels[field] for field in OUTPUT_FIELDS})


def _weighted_quotas(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` over keys in proportion to weights (largest remainder)."""
    weight_sum = sum(weights.values())
    raw = {key: total * w / weight_sum for key, w in weights.items()}
    quotas = {key: int(value) for key, value in raw.items()}
    leftover = total - sum(quotas.values())
    # Ties are broken by key order so the result is deterministic.
    by_remainder = sorted(raw, key=lambda key: (-(raw[key] - quotas[key]), list(weights).index(key)))
    for key in by_remainder[:leftover]:
        quotas[key] += 1
    return quotas


def _sample_slots(rng: random.Random) -> dict[str, str]:
    slots = {name: rng.choice(values) for name, values in _SLOT_CHOICES.items()}
    currency = rng.choice(("$", "$", "$", "£", "€"))
    cents = rng.choice(("00", "99", "49", "95", "50", "20"))
    slots["amount"] = f"{currency}{rng.randint(6, 480)}.{cents}"
    if rng.random() < 0.25:
        slots["amount"] = f"{currency}{rng.choice((10, 20, 25, 40, 50, 75, 100, 150, 200, 300))}"
    slots["order"] = rng.choice(("#", "", "no. ", "ORD-")) + str(rng.randint(100000, 999999))
    slots["days"] = str(rng.randint(3, 21))
    slots["n"] = str(rng.randint(2, 9))
    slots["hours"] = str(rng.randint(2, 6))
    slots["years"] = str(rng.randint(2, 12))
    slots["year"] = str(rng.randint(2012, 2023))
    slots["last4"] = f"{rng.randint(0, 9999):04d}"
    return slots


def _typo(text: str, rng: random.Random) -> str:
    """Introduce one realistic typo (swap, drop or double a letter) in a filler word."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha() and w.lower() not in _NO_TYPO_WORDS]
    if not candidates:
        return text
    i = rng.choice(candidates)
    word = words[i]
    pos = rng.randint(1, len(word) - 2)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
    elif kind == "drop":
        word = word[:pos] + word[pos + 1 :]
    else:
        word = word[:pos] + word[pos] + word[pos:]
    words[i] = word
    return " ".join(words)


def _compose_message(rng: random.Random, category: str, situation: str, sentiment: str) -> str:
    """Build one customer message whose labels follow from its content."""
    slots = _sample_slots(rng)
    pool = "blocked" if situation == "emergency" else situation
    phrasings = rng.choice(_BANK[category][pool])
    core = rng.choice(phrasings).format(**slots)
    is_question = situation == "request"

    # Body segments are (text, may_get_typo). Only filler gets typos, so the
    # words that decide a label (situation, deadline, tone) stay intact.
    before: list[tuple[str, bool]] = []
    after: list[tuple[str, bool]] = []

    if rng.random() < 0.3:
        context_pool = _CONTEXT_BY_CATEGORY[category] + _CONTEXT_GENERIC
        context = (rng.choice(context_pool).format(**slots), True)
        (before if rng.random() < 0.7 else after).append(context)
    attempts = _ATTEMPTS_QUESTION if is_question else _ATTEMPTS_PROBLEM
    if rng.random() < 0.22:
        after.append((rng.choice(attempts), True))

    if situation == "emergency":
        clause = (_emergency_clause(rng, category).format(**slots), False)
        # Stressed customers sometimes lead with the deadline.
        if rng.random() < 0.3:
            before.insert(0, clause)
        else:
            after.insert(0, clause)

    # Non-neutral tones always get a phrase so the sentiment label is visible.
    if sentiment != "neutral" or rng.random() < 0.4:
        tone = _tone_phrase(rng, sentiment, is_question)
        if sentiment == "frustrated" and rng.random() < 0.12:
            tone = tone.upper()
        if rng.random() < 0.35:
            before.insert(0, (tone, False))
        else:
            after.append((tone, False))
        if sentiment != "neutral" and rng.random() < 0.2:
            # A second phrase of the same tone makes some messages longer.
            # Full sentences only, so the same stem is not repeated twice.
            second = _tone_phrase(rng, sentiment, is_question, stems=False)
            if second != tone:
                after.append((second, False))

    body_parts = []
    for text, fillable in [*before, (core, False), *after]:
        if fillable and rng.random() < 0.18:
            text = _typo(text, rng)
        body_parts.append(text)
    body = " ".join(body_parts)

    # Email-style messages put greeting and sign-off on their own lines;
    # chat-style ones run everything together.
    sep = "\n" if rng.random() < 0.3 else " "
    if rng.random() < 0.55:
        greeting = rng.choice(_GREETINGS)
        if rng.random() < 0.18:
            greeting = _typo(greeting, rng)
        if sep == " " and not greeting.endswith(".") and not body.startswith(("I ", "I'")):
            body = body[0].lower() + body[1:]  # "Hi, my order ..." rather than "Hi, My order ..."
        body = f"{greeting}{sep}{body}"
    if rng.random() < 0.4:
        sign_off = rng.choice(_SIGN_OFFS[sentiment])
        name = rng.choice(_NAMES) if rng.random() < 0.7 else ""
        if sign_off == "-":
            sign_off = f"- {name}" if name else ""
        elif name:
            sign_off = f"{sign_off}{sep}{name}"
        else:
            sign_off = sign_off.rstrip(",")
        if sign_off:
            body = f"{body}{sep}{sign_off}"
    elif rng.random() < 0.2:
        body = f"{body} {rng.choice(_NAMES)}"

    # Casual writing: sometimes all lowercase, sometimes without a final stop.
    message = body
    if rng.random() < 0.12:
        message = message.lower()
    if rng.random() < 0.15 and message[-1] in ".!":
        message = message.rstrip(".!")
    if sentiment == "frustrated" and message[-1] in ".?" and rng.random() < 0.2:
        message = message[:-1] + rng.choice(("!!", "!!!", "?!"))
    return message


def generate_examples(count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> list[dict[str, str]]:
    """Generate ``count`` labelled customer-support examples.

    Categories are exactly balanced (up to rounding); situation kinds follow
    per-category quotas; tones are sampled per situation. The same ``count`` and
    ``seed`` always give the same list.

    Args:
        count: Number of examples, at least 1.
        seed: Seed for the private ``random.Random`` instance.

    Returns:
        Examples ``{"instruction", "input", "output"}`` in a shuffled order, with
        no two messages equal after normalisation.

    Raises:
        ValueError: If ``count`` < 1.
        RuntimeError: If no new unique message can be composed (count far
            beyond what the phrasing bank supports).
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = random.Random(seed)
    categories = FIELD_VALUES["category"]
    per_category = _weighted_quotas(count, {c: 1.0 for c in categories})
    slots: list[tuple[str, str]] = []
    for category in categories:
        quotas = _weighted_quotas(per_category[category], _SITUATION_WEIGHTS[category])
        for situation in SITUATIONS:
            slots.extend([(category, situation)] * quotas[situation])
    rng.shuffle(slots)

    seen: set[str] = set()
    examples: list[dict[str, str]] = []
    for category, situation in slots:
        weights = _SENTIMENT_WEIGHTS[situation]
        sentiment = rng.choices(list(weights), weights=list(weights.values()))[0]
        for _ in range(200):
            message = _compose_message(rng, category, situation, sentiment)
            key = normalize_text(message)
            if key not in seen:
                break
        else:
            raise RuntimeError(f"could not compose a unique message for {category}/{situation}")
        seen.add(key)
        labels = derive_labels(category, situation, sentiment)
        examples.append(
            {
                "instruction": CLASSIFIER_INSTRUCTION,
                "input": message,
                "output": canonical_output(labels),
            }
        )
    return examples


def _stratum(example: Mapping[str, str]) -> str:
    try:
        labels = json.loads(example["output"])
        return f"{labels['category']}/{labels['severity']}"
    except (KeyError, TypeError, ValueError):
        return ""


def split_examples(
    examples: Sequence[dict[str, str]],
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
    seed: int = DEFAULT_SEED,
    threshold: float = DEFAULT_THRESHOLD,
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Split examples into train and eval without cross-split near duplicates.

    Messages are first grouped into connected components of near duplicates
    (:func:`~evalkit.data.near_duplicates.find_near_duplicates` at
    ``threshold``). Eval items are drawn per (category, severity) stratum,
    preferring messages with no near twin at all; a message with twins only
    enters eval together with its whole group. A final check moves any eval
    item that still has a train near duplicate into train.

    Args:
        examples: Examples with an ``"input"`` message and JSON ``"output"``.
        eval_fraction: Target share of eval examples, in (0, 1).
        seed: Seed for the deterministic choice of eval items.
        threshold: Near-duplicate threshold passed to ``find_near_duplicates``.

    Returns:
        ``(train, eval)`` lists, each in the original relative order.

    Raises:
        ValueError: If ``eval_fraction`` is not in (0, 1).
    """
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    texts = [ex["input"] for ex in examples]
    size = len(texts)

    parent = list(range(size))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for pair in find_near_duplicates(texts, texts, threshold=threshold):
        a, b = root(pair.eval_index), root(pair.train_index)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(size):
        groups.setdefault(root(i), []).append(i)

    strata = [_stratum(ex) for ex in examples]
    stratum_sizes = Counter(strata)
    # Sorted keys make the quota tie-breaking independent of hash order.
    quotas = _weighted_quotas(round(size * eval_fraction), {s: float(stratum_sizes[s]) for s in sorted(stratum_sizes)})

    rng = random.Random(seed)
    order = list(range(size))
    rng.shuffle(order)
    order.sort(key=lambda i: len(groups[root(i)]) > 1)  # stable: singletons first

    taken: Counter[str] = Counter()
    eval_set: set[int] = set()
    for i in order:
        if i in eval_set or taken[strata[i]] >= quotas[strata[i]]:
            continue
        members = groups[root(i)]
        need = Counter(strata[m] for m in members)
        if any(taken[s] + k > quotas[s] for s, k in need.items()):
            continue
        eval_set.update(members)
        taken.update(need)
    # A stratum that could not fill its quota leaves room: top up with any
    # remaining stand-alone message so the eval size stays on target.
    target = sum(quotas.values())
    for i in order:
        if len(eval_set) >= target:
            break
        if i not in eval_set and len(groups[root(i)]) == 1:
            eval_set.add(i)

    # Safety net (normally a no-op): move leaking eval items to train until clean.
    while True:
        eval_idx = sorted(eval_set)
        train_idx = [i for i in range(size) if i not in eval_set]
        leaks = find_near_duplicates([texts[i] for i in train_idx], [texts[i] for i in eval_idx], threshold)
        if not leaks:
            break
        eval_set.difference_update(eval_idx[p.eval_index] for p in leaks)

    return [dict(examples[i]) for i in train_idx], [dict(examples[i]) for i in eval_idx]


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same dir and os.replace."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; data files should be readable like any other.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _jsonl(examples: Sequence[Mapping[str, str]]) -> str:
    lines = [
        json.dumps({"instruction": ex["instruction"], "input": ex["input"], "output": ex["output"]}) for ex in examples
    ]
    return "".join(line + "\n" for line in lines)


def render_readme(
    train: Sequence[Mapping[str, str]],
    eval_: Sequence[Mapping[str, str]],
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
) -> str:
    """Render the dataset card (label rules, regeneration command, counts, samples).

    Args:
        train: Training examples.
        eval_: Evaluation examples.
        count: The ``count`` the files were generated with.
        seed: The ``seed`` the files were generated with.

    Returns:
        Markdown text ending with a newline.
    """
    lines = [
        "# Customer-support classifier data",
        "",
        "Synthetic customer messages labelled with severity, category, urgency, sentiment and",
        "recommended action. Generated by `evalkit/data/classifier.py`; do not edit by hand.",
        "",
        "## Regenerate",
        "",
        "```bash",
        "evalkit data classifier --out data/classifier"
        + ("" if (count, seed) == (DEFAULT_COUNT, DEFAULT_SEED) else f" --count {count} --seed {seed}"),
        "# equivalent:",
        'python -c "from pathlib import Path; from evalkit.data.classifier import write_classifier_data; '
        f"write_classifier_data(Path('data/classifier'), count={count}, seed={seed})\"",
        "```",
        "",
        "The output is byte-for-byte reproducible for a given count and seed",
        "(`tests/data/test_classifier_data.py` checks the committed files).",
        "",
        "## Format",
        "",
        "`train.jsonl` and `eval.jsonl` hold one JSON object per line with keys `instruction`,",
        "`input` and `output` (`json.dumps` defaults, so non-ASCII characters are escaped).",
        f"`instruction` is always `{CLASSIFIER_INSTRUCTION}`.",
        "`output` is a JSON string with keys in this order: " + ", ".join(f"`{f}`" for f in OUTPUT_FIELDS) + ",",
        'serialised with `json.dumps` defaults (`{"severity": "critical", "category": ...}`).',
        "",
        "## Label rules",
        "",
        "- **severity**",
        "  - `critical`: fraud or a security breach (an unauthorised charge, a taken-over account,",
        "    leaked data), or the customer is blocked / has lost money AND states a deadline or",
        "    emergency.",
        "  - `high`: blocked or money lost, no deadline or emergency.",
        "  - `medium`: something works wrong but there is a workaround, or the service is only",
        "    degraded.",
        "  - `low`: a request or a question.",
        "- **urgency**: critical -> `immediate`, high -> `same_day`, medium/low -> `routine`.",
        "- **recommended_action**: critical/high -> `escalate_to_agent`, medium -> `create_ticket`,",
        "  low -> `self_service`.",
        "- **sentiment**: the customer's tone: `distressed` (panic, fear), `frustrated` (anger,",
        "  annoyance), `neutral`, `positive` (thanks, praise). Tone is independent of severity:",
        "  a polite customer can have an emergency, an angry one a trivial question.",
        "- **category**: the topic: `account_access` (login, passwords, 2FA, account settings),",
        "  `billing` (charges, refunds, invoices, payment methods), `shipping` (deliveries,",
        "  tracking, returns logistics), `technical` (app/site bugs, sync, API, data),",
        "  `general_inquiry` (stores, warranty, loyalty program, policies, impersonation scams).",
        "",
        "## How messages are built",
        "",
        "Latent labels are sampled first (category balanced exactly; situation kind fraud /",
        "blocked+emergency / blocked / degraded / request per category quota; tone per situation),",
        "then the message is composed from a situation phrasing with random slot values, plus",
        "optional greeting, context sentence, 'what I tried' sentence, deadline or emergency",
        "clause (critical non-fraud only, always present there), tone phrase(s) and sign-off.",
        "Typos (letter swaps/drops/doubles) only touch filler words; some messages are lowercased",
        "or lose their final punctuation. Messages are unique after normalisation.",
        "",
        "The split is stratified by (category, severity). Messages are grouped by near",
        f"duplicates (word-trigram overlap coefficient >= {DEFAULT_THRESHOLD}, see",
        "`evalkit/data/near_duplicates.py`); eval only takes messages without a near twin, so",
        "no eval message has an exact or near duplicate in train.",
        "",
        "## Counts",
        "",
        f"{len(train)} train / {len(eval_)} eval examples.",
        "",
    ]
    parsed = {
        "train": [json.loads(ex["output"]) for ex in train],
        "eval": [json.loads(ex["output"]) for ex in eval_],
    }
    for field in OUTPUT_FIELDS:
        lines += [f"### {field}", "", "| value | train | eval | total | share |", "|---|---:|---:|---:|---:|"]
        for value in FIELD_VALUES[field]:
            n_train = sum(1 for labels in parsed["train"] if labels[field] == value)
            n_eval = sum(1 for labels in parsed["eval"] if labels[field] == value)
            total = n_train + n_eval
            share = total / max(1, len(train) + len(eval_))
            lines.append(f"| `{value}` | {n_train} | {n_eval} | {total} | {share:.0%} |")
        lines.append("")
    lines += ["## Sample lines (eval.jsonl)", "", "```json"]
    lines += [_jsonl([ex]).rstrip("\n") for ex in list(eval_)[:6]]
    lines += ["```", ""]
    return "\n".join(lines)


def write_classifier_data(
    out_dir: Path,
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
) -> tuple[Path, Path]:
    """Generate, split and write the classifier dataset.

    Writes ``train.jsonl``, ``eval.jsonl`` and a ``README.md`` dataset card into
    ``out_dir`` (created if missing), each atomically.

    Args:
        out_dir: Output directory.
        count: Total number of examples before the split.
        seed: Seed for generation and split.

    Returns:
        ``(train_path, eval_path)``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = generate_examples(count, seed)
    train, eval_ = split_examples(examples, DEFAULT_EVAL_FRACTION, seed)
    train_path = out_dir / "train.jsonl"
    eval_path = out_dir / "eval.jsonl"
    _write_atomic(train_path, _jsonl(train))
    _write_atomic(eval_path, _jsonl(eval_))
    _write_atomic(out_dir / "README.md", render_readme(train, eval_, count, seed))
    return train_path, eval_path
