"""The demo world that ``seed_demo`` loads (PRODUCT.md "Demo data"), as plain tables.

Organisations are named by short keys (companies and sites share one namespace). Dates are
months before today ("ago"), so the data stays sensible whenever it is loaded. A person holds a
role on a study or study-site at most once here: (person, role, scope) is the natural key by
which a re-run finds the assignment it made before, ended or not.
"""

from __future__ import annotations

import datetime

DEMO_PASSWORD = "demo"

# key: (kind, name, country, time zone)
COMPANIES = {
    "sponsor_a": ("sponsor", "Sponsor A Pharma", "DE", "Europe/Berlin"),
    "sponsor_b": ("sponsor", "Sponsor B Biotech", "NL", "Europe/Amsterdam"),
    "meridian": ("cro", "Meridian Clinical Research", "GB", "Europe/London"),
    "northbridge": ("cro", "Northbridge CRO", "IE", "Europe/Dublin"),
}
# The CRO engaged by both sponsors: it registers the site staff on every study.
LEAD_CRO = "meridian"

_WEEKLY_MONDAY_9 = {"digest_frequency": "weekly", "digest_weekday": 0, "digest_hour": 9}

# key: the site's profile; its organisation is named after the institution. Sites get a daily
# digest at 08:00 local time and no quiet hours unless they say otherwise.
SITES = {
    "charite": {
        "name": "Charité Berlin",
        "institution": "Charité – Universitätsmedizin Berlin",
        "address": "Charitéplatz 1",
        "city": "Berlin",
        "country": "DE",
        "time_zone": "Europe/Berlin",
        "therapeutic_areas": ["oncology", "neurology", "cardiology"],
    },
    "heidelberg": {
        "name": "Heidelberg University Hospital",
        "institution": "Universitätsklinikum Heidelberg",
        "address": "Im Neuenheimer Feld 672",
        "city": "Heidelberg",
        "country": "DE",
        "time_zone": "Europe/Berlin",
        "therapeutic_areas": ["oncology"],
    },
    "munich": {
        "name": "Klinikum rechts der Isar",
        "institution": "Klinikum rechts der Isar der Technischen Universität München",
        "address": "Ismaninger Straße 22",
        "city": "Munich",
        "country": "DE",
        "time_zone": "Europe/Berlin",
        "therapeutic_areas": ["cardiology", "neurology"],
        "digest_hour": 7,
    },
    "hamburg": {
        "name": "UKE Hamburg",
        "institution": "Universitätsklinikum Hamburg-Eppendorf",
        "address": "Martinistraße 52",
        "city": "Hamburg",
        "country": "DE",
        "time_zone": "Europe/Berlin",
        "therapeutic_areas": ["neurology", "oncology"],
    },
    "pitie": {
        "name": "Pitié-Salpêtrière",
        "institution": "Hôpital Pitié-Salpêtrière (AP-HP)",
        "address": "47-83 boulevard de l'Hôpital",
        "city": "Paris",
        "country": "FR",
        "time_zone": "Europe/Paris",
        "therapeutic_areas": ["neurology", "cardiology"],
    },
    "lyon": {
        "name": "Hôpital Édouard Herriot",
        "institution": "Hospices Civils de Lyon – Hôpital Édouard Herriot",
        "address": "5 place d'Arsonval",
        "city": "Lyon",
        "country": "FR",
        "time_zone": "Europe/Paris",
        "therapeutic_areas": ["oncology", "cardiology"],
    },
    "bordeaux": {
        "name": "CHU de Bordeaux – Pellegrin",
        "institution": "CHU de Bordeaux – Hôpital Pellegrin",
        "address": "Place Amélie Raba Léon",
        "city": "Bordeaux",
        "country": "FR",
        "time_zone": "Europe/Paris",
        "therapeutic_areas": ["neurology"],
        **_WEEKLY_MONDAY_9,
    },
    "roussy": {
        "name": "Gustave Roussy",
        "institution": "Gustave Roussy Cancer Campus",
        "address": "114 rue Édouard Vaillant",
        "city": "Villejuif",
        "country": "FR",
        "time_zone": "Europe/Paris",
        "therapeutic_areas": ["oncology"],
    },
    "vhebron": {
        "name": "Vall d'Hebron Barcelona",
        "institution": "Hospital Universitari Vall d'Hebron",
        "address": "Passeig de la Vall d'Hebron 119-129",
        "city": "Barcelona",
        "country": "ES",
        "time_zone": "Europe/Madrid",
        "therapeutic_areas": ["oncology", "neurology"],
        # The one demo site with quiet hours (it takes part in Sponsor B's study).
        "quiet_hours_enabled": True,
        "quiet_hours_start": datetime.time(20, 0),
        "quiet_hours_end": datetime.time(7, 0),
    },
    "doce": {
        "name": "Hospital 12 de Octubre",
        "institution": "Hospital Universitario 12 de Octubre",
        "address": "Avenida de Córdoba s/n",
        "city": "Madrid",
        "country": "ES",
        "time_zone": "Europe/Madrid",
        "therapeutic_areas": ["oncology", "cardiology"],
        "digest_hour": 9,
    },
    "lafe": {
        "name": "Hospital La Fe Valencia",
        "institution": "Hospital Universitari i Politècnic La Fe",
        "address": "Avinguda de Fernando Abril Martorell 106",
        "city": "Valencia",
        "country": "ES",
        "time_zone": "Europe/Madrid",
        "therapeutic_areas": ["neurology", "cardiology"],
    },
    "warsaw": {
        "name": "UCK WUM Warsaw",
        "institution": "Uniwersyteckie Centrum Kliniczne Warszawskiego Uniwersytetu Medycznego",
        "address": "ul. Banacha 1a",
        "city": "Warsaw",
        "country": "PL",
        "time_zone": "Europe/Warsaw",
        "therapeutic_areas": ["cardiology", "oncology"],
    },
    "krakow": {
        "name": "University Hospital Kraków",
        "institution": "Szpital Uniwersytecki w Krakowie",
        "address": "ul. Jakubowskiego 2",
        "city": "Kraków",
        "country": "PL",
        "time_zone": "Europe/Warsaw",
        "therapeutic_areas": ["neurology", "cardiology"],
        **_WEEKLY_MONDAY_9,
    },
    "gliwice": {
        "name": "NIO Gliwice",
        "institution": "Narodowy Instytut Onkologii – Oddział w Gliwicach",
        "address": "ul. Wybrzeże Armii Krajowej 15",
        "city": "Gliwice",
        "country": "PL",
        "time_zone": "Europe/Warsaw",
        "therapeutic_areas": ["oncology"],
    },
}

# (username, organisation key, first name, last name, job title). Organisation admins exist to
# bootstrap each sponsor's studies (they name the sponsor lead); the personas hold plain roles.
ORG_ADMINS = (
    ("sponsor-a-admin", "sponsor_a", "Petra", "Hoffmann", "Clinical Operations Administrator"),
    ("sponsor-b-admin", "sponsor_b", "Sanne", "de Vries", "Clinical Operations Administrator"),
)
PEOPLE = (
    ("sponsor_a", "sponsor_a", "Katharina", "Weber", "Clinical Lead, Oncology and Cardiology"),
    ("jonas.richter", "sponsor_a", "Jonas", "Richter", "Medical Affairs Manager"),
    ("sponsor_b", "sponsor_b", "Maarten", "Bakker", "Clinical Lead, Neurology"),
    ("cro_pm", "meridian", "Rachel", "Thompson", "Senior Project Manager"),
    ("cra_1", "meridian", "Daniel", "Fischer", "Senior Clinical Research Associate"),
    ("cra_2", "meridian", "Lucía", "Fernández", "Clinical Research Associate"),
    ("cra_former", "meridian", "Tomasz", "Nowak", "Clinical Research Associate"),
    ("aoife.murphy", "northbridge", "Aoife", "Murphy", "Project Manager"),
    ("ciaran.obrien", "northbridge", "Ciarán", "O'Brien", "Clinical Research Associate"),
    ("site_coord", "charite", "Anna", "Schmidt", "Study Coordinator"),
    ("markus.klein", "charite", "Markus", "Klein", "Principal Investigator, Thoracic Oncology"),
    ("sabine.kruger", "charite", "Sabine", "Krüger", "Principal Investigator, Neurology"),
    ("site_coord_2", "lyon", "Camille", "Martin", "Clinical Research Coordinator"),
    ("claire.moreau", "lyon", "Claire", "Moreau", "Principal Investigator, Medical Oncology"),
    ("julien.dubois", "lyon", "Julien", "Dubois", "Principal Investigator, Cardiology"),
    ("marta.garcia", "vhebron", "Marta", "García", "Study Coordinator"),
    ("elodie.bernard", "pitie", "Élodie", "Bernard", "Clinical Research Coordinator"),
    ("sebastian.wagner", "munich", "Sebastian", "Wagner", "Study Nurse and Coordinator"),
    ("javier.lopez", "doce", "Javier", "López", "Study Coordinator"),
    ("katarzyna.kowalska", "warsaw", "Katarzyna", "Kowalska", "Clinical Trial Coordinator"),
    ("piotr.zielinski", "krakow", "Piotr", "Zieliński", "Clinical Trial Coordinator"),
)
ADMIN = ("admin", "Alex", "Morgan")  # platform administrator: superuser, in no organisation

ONC, CAR, NEU = "SPA-ONC-301", "SPA-CAR-202", "SPB-NEU-201"

# Planned start and end in months before and after today; "cros": engaged CRO and its scope.
STUDIES = (
    {
        "code": ONC,
        "sponsor": "sponsor_a",
        "lead": ("sponsor_a", 24),  # the sponsor lead, since 24 months ago
        "title": "A randomised, double-blind phase III study of zelvatinib plus platinum "
        "chemotherapy versus chemotherapy alone in untreated advanced non-small-cell lung cancer",
        "phase": "3",
        "therapeutic_area": "Oncology",
        "enrolment_target": 240,
        "start_ago": 18,
        "end_in": 30,
        "cros": {"meridian": "Full service: site selection, start-up, monitoring, data management"},
    },
    {
        "code": CAR,
        "sponsor": "sponsor_a",
        "lead": ("sponsor_a", 15),
        "title": "A phase II dose-ranging study of cardiotrelin in heart failure with preserved "
        "ejection fraction",
        "phase": "2",
        "therapeutic_area": "Cardiology",
        "enrolment_target": 120,
        "start_ago": 12,
        "end_in": 12,
        "cros": {"meridian": "Full service: site selection, start-up, monitoring, data management"},
    },
    {
        "code": NEU,
        "sponsor": "sponsor_b",
        "lead": ("sponsor_b", 14),
        "title": "A randomised phase II study of neurofenant in early relapsing-remitting "
        "multiple sclerosis",
        "phase": "2",
        "therapeutic_area": "Neurology",
        "enrolment_target": 150,
        "start_ago": 10,
        "end_in": 14,
        "cros": {
            "meridian": "Site management and monitoring in DE, FR and ES; data management",
            "northbridge": "Monitoring of Polish and selected French and Spanish sites",
        },
    },
)

# RACI codes of each CRO in every study it is engaged on; the sponsor is Accountable for all.
_MERIDIAN_RESPONSIBLE = (
    "site_selection",
    "contracts_budgets",
    "monitoring",
    "protocol_amendments",
    "safety_comms",
    "regulatory_documents",
    "data_queries",
    "training",
    "payments",
)
CRO_MATRIX_CODES = {
    "meridian": {**dict.fromkeys(_MERIDIAN_RESPONSIBLE, "R"), "recruitment_comms": "C"},
    "northbridge": {
        "site_selection": "I",
        "contracts_budgets": "I",
        "monitoring": "C",
        "recruitment_comms": "I",
        "protocol_amendments": "I",
        "safety_comms": "I",
        "regulatory_documents": "C",
        "data_queries": "C",
        "training": "C",
        "payments": "I",
    },
}
MATRIX_NOTE = (
    "Agreed at the kick-off meeting: the CRO runs site operations, the sponsor owns "
    "recruitment communications."
)

# Further study-wide roles, handed out by the sponsor lead: (username, role, study, start
# months ago).
STUDY_ROLES = (
    ("jonas.richter", "sponsor_viewer", ONC, 18),
    ("jonas.richter", "sponsor_viewer", CAR, 12),
    ("cro_pm", "cro_pm", ONC, 22),
    ("cro_pm", "cro_pm", CAR, 14),
    ("cro_pm", "cro_pm", NEU, 12),
    ("aoife.murphy", "cro_pm", NEU, 11),
)

# study: (site key, site number, status, enrolment target, milestones in months ago, in the
# order selected, regulatory approval, contract signed, activated, first patient in, last
# patient in, closed — as far as the site has got).
STUDY_SITES = {
    ONC: (
        ("charite", "DE-101", "enrolling", 36, (20, 17, 16.5, 15, 14)),
        ("heidelberg", "DE-102", "enrolling", 30, (20, 17.5, 16, 15, 13.5)),
        ("roussy", "FR-201", "enrolling", 36, (19.5, 16, 16.5, 14.5, 13)),
        ("lyon", "FR-202", "enrolling", 30, (19, 15.5, 15, 14, 12)),
        ("vhebron", "ES-301", "enrolling", 32, (19, 15, 14, 12.5, 11)),
        ("doce", "ES-302", "enrolling", 28, (18, 14, 13, 11.5, 10)),
        ("warsaw", "PL-401", "startup", 24, (9, 4)),
        ("gliwice", "PL-402", "closed", 24, (20, 16, 16, 15, 13, 6, 5)),
    ),
    CAR: (
        ("lyon", "FR-211", "enrolling", 20, (13, 10.5, 10, 9, 8)),
        ("munich", "DE-111", "enrolling", 20, (13, 10, 10.5, 9, 7.5)),
        ("pitie", "FR-212", "activated", 16, (12, 8, 7, 5)),
        ("doce", "ES-311", "enrolling", 18, (12.5, 10, 9.5, 8.5, 7)),
        ("lafe", "ES-312", "startup", 14, (8, 4.5)),
        ("warsaw", "PL-411", "enrolling", 18, (13, 10, 9.5, 9, 8)),
        ("krakow", "PL-412", "selected", 14, (2,)),
    ),
    NEU: (
        ("charite", "DE-121", "enrolling", 24, (11, 8, 8, 7, 6)),
        ("hamburg", "DE-122", "enrolling", 24, (11, 8.5, 7.5, 7, 5.5)),
        ("pitie", "FR-221", "enrolling", 22, (10.5, 8, 7.5, 6.5, 5)),
        ("bordeaux", "FR-222", "activated", 18, (10, 6, 5.5, 3)),
        ("vhebron", "ES-321", "enrolling", 24, (11, 8, 7, 6, 4.5)),
        ("lafe", "ES-322", "startup", 18, (7, 3)),
        ("krakow", "PL-421", "enrolling", 20, (10, 7, 7, 6, 4)),
    ),
}

# Site staff: (username, role, studies), each on the study-site of their own site, from the
# day the site was selected.
SITE_STAFF = (
    ("site_coord", "site_coordinator", (ONC, NEU)),
    ("markus.klein", "principal_investigator", (ONC,)),
    ("sabine.kruger", "principal_investigator", (NEU,)),
    ("site_coord_2", "site_coordinator", (ONC, CAR)),
    ("claire.moreau", "principal_investigator", (ONC,)),
    ("julien.dubois", "principal_investigator", (CAR,)),
    ("marta.garcia", "site_coordinator", (ONC, NEU)),
    ("elodie.bernard", "site_coordinator", (CAR, NEU)),
    ("sebastian.wagner", "site_coordinator", (CAR,)),
    ("javier.lopez", "site_coordinator", (ONC, CAR)),
    ("katarzyna.kowalska", "site_coordinator", (ONC, CAR)),
    ("piotr.zielinski", "site_coordinator", (CAR, NEU)),
)

# CRAs per study-site, in turn: (username, start months ago, end months ago or None, why it
# ended). cra_former left Meridian nine months ago; his sites were handed to cra_1 and cra_2.
LEFT = "CRA left the company"
REBALANCED = "Workload rebalancing"
CRA_TENURES = {
    (ONC, "charite"): (("cra_1", 20, None, ""),),
    (ONC, "heidelberg"): (
        ("cra_former", 20, 9, LEFT),
        ("cra_2", 9, 4, REBALANCED),
        ("cra_1", 4, None, ""),
    ),
    (ONC, "roussy"): (("cra_former", 19.5, 9, LEFT), ("cra_2", 9, None, "")),
    (ONC, "lyon"): (("cra_2", 19, None, ""),),
    (ONC, "vhebron"): (("cra_1", 19, None, ""),),
    (ONC, "doce"): (("cra_2", 18, None, ""),),
    (ONC, "warsaw"): (("cra_1", 9, None, ""),),
    (ONC, "gliwice"): (("cra_former", 20, 9, LEFT), ("cra_1", 9, 5, "Site closed")),
    (CAR, "lyon"): (("cra_2", 13, None, ""),),
    (CAR, "munich"): (("cra_1", 13, None, ""),),
    (CAR, "pitie"): (("cra_1", 12, None, ""),),
    (CAR, "doce"): (("cra_2", 12.5, None, ""),),
    (CAR, "lafe"): (("cra_2", 8, None, ""),),
    (CAR, "warsaw"): (
        ("cra_former", 13, 9, LEFT),
        ("cra_1", 9, 3, REBALANCED),
        ("cra_2", 3, None, ""),
    ),
    (CAR, "krakow"): (("cra_1", 2, None, ""),),
    (NEU, "charite"): (("cra_1", 11, None, ""),),
    (NEU, "hamburg"): (("cra_1", 11, None, ""),),
    (NEU, "pitie"): (("cra_2", 10.5, None, ""),),
    (NEU, "bordeaux"): (("ciaran.obrien", 10, None, ""),),
    (NEU, "vhebron"): (
        ("cra_former", 11, 9, LEFT),
        ("cra_2", 9, 2, REBALANCED),
        ("cra_1", 2, None, ""),
    ),
    (NEU, "lafe"): (("ciaran.obrien", 7, None, ""),),
    (NEU, "krakow"): (("ciaran.obrien", 10, None, ""),),
}

# (study, site key, username, kind, title, completed months ago)
TRAINING = (
    (ONC, "charite", "site_coord", "protocol", "SPA-ONC-301 protocol v3.0", 15.5),
    (ONC, "charite", "markus.klein", "protocol", "SPA-ONC-301 protocol v3.0", 15.5),
    (ONC, "charite", "site_coord", "system", "Medidata Rave EDC site user", 15),
    (ONC, "charite", "site_coord", "amendment", "Protocol amendment 2 (v4.0)", 3),
    (NEU, "charite", "site_coord", "protocol", "SPB-NEU-201 protocol v1.0", 7.5),
    (NEU, "charite", "sabine.kruger", "protocol", "SPB-NEU-201 protocol v1.0", 7.5),
    (NEU, "charite", "site_coord", "system", "Suvoda IRT randomisation", 7),
    (ONC, "lyon", "site_coord_2", "protocol", "SPA-ONC-301 protocol v3.0", 14.5),
    (ONC, "lyon", "claire.moreau", "protocol", "SPA-ONC-301 protocol v3.0", 14.5),
    (ONC, "lyon", "site_coord_2", "amendment", "Protocol amendment 2 (v4.0)", 2.5),
    (CAR, "lyon", "site_coord_2", "protocol", "SPA-CAR-202 protocol v2.1", 9.5),
    (CAR, "lyon", "julien.dubois", "protocol", "SPA-CAR-202 protocol v2.1", 9.5),
    (CAR, "lyon", "site_coord_2", "system", "Veeva Vault eTMF site access", 9),
)

# Sponsor–CRO coordination. Status updates: the period (from, to) and when posted, in months
# ago; a re-run finds one by study, author and highlights.
STATUS_UPDATES = (
    {
        "study": ONC,
        "author": "cro_pm",
        "period": (3, 2),
        "posted": 1.9,
        "highlights": "Six of eight sites enrolling; 14 patients randomised in the period, "
        "the best month so far. Amendment 2 training completed at Charité and Lyon.",
        "risks": "Warsaw start-up slipped: the ethics committee asked for a revised consent "
        "form. Query backlog at Gustave Roussy above 40 open queries.",
        "asks": "Sponsor to confirm the revised Polish consent form wording by the 15th.",
    },
    {
        "study": ONC,
        "author": "sponsor_a",
        "period": (2, 1),
        "posted": 0.9,
        "highlights": "Enrolment at 61% of target to date. DSMB review passed without "
        "recommendations. Gliwice close-out completed.",
        "risks": "Screen-failure rate at Spanish sites rising (EGFR testing turnaround).",
        "asks": "CRO to propose a recruitment push for ES sites with the sponsor's letter.",
    },
    {
        "study": ONC,
        "author": "cro_pm",
        "period": (1, 0.2),
        "posted": 0.1,
        "highlights": "Warsaw approved by the ethics committee; site initiation visit booked. "
        "Roussy query backlog down to 12.",
        "risks": "One CRA covers four sites since the handover at Heidelberg.",
        "asks": "",
    },
    {
        "study": NEU,
        "author": "sponsor_b",
        "period": (2, 1),
        "posted": 0.9,
        "highlights": "Five of seven sites enrolling; Kraków ahead of target.",
        "risks": "Bordeaux activated but no patient screened in eight weeks.",
        "asks": "Northbridge to share a Bordeaux recovery plan.",
    },
    {
        "study": NEU,
        "author": "cro_pm",
        "period": (1, 0.2),
        "posted": 0.1,
        "highlights": "MRI reading turnaround down to 4 days after the vendor change.",
        "risks": "La Fe contract still unsigned.",
        "asks": "Sponsor legal to review La Fe's indemnity clause.",
    },
)

# Meetings (held months ago) with their action items: (description, owner, due in months ago,
# negative for ahead, and done months ago or None). A re-run finds a meeting by study and title
# and its items by description.
MEETINGS = (
    {
        "study": ONC,
        "recorded_by": "cro_pm",
        "held": 1.5,
        "title": "Monthly operations review: enrolment and start-up",
        "attendees": "Katharina Weber (Sponsor A), Jonas Richter (Sponsor A), Rachel Thompson "
        "(Meridian), Daniel Fischer (Meridian), Lucía Fernández (Meridian)",
        "notes": "Enrolment on track overall; Spanish screen failures discussed. The sponsor "
        "will speak to the sites directly for the recruitment push, coordinated with Meridian.",
        "action_items": (
            ("Draft the ES recruitment push for the sponsor's approval", "cro_pm", 1.2, 1.3),
            ("Send the sponsor letter on EGFR testing to ES sites", "sponsor_a", 1.0, 0.9),
            ("Close the Roussy query backlog below 15 open queries", "cra_2", 0.5, None),
            ("Book the Warsaw site initiation visit", "cra_1", -0.5, None),
        ),
    },
    {
        "study": NEU,
        "recorded_by": "sponsor_b",
        "held": 0.7,
        "title": "Sponsor–CRO quarterly feedback session",
        "attendees": "Maarten Bakker (Sponsor B), Rachel Thompson (Meridian), Aoife Murphy "
        "(Northbridge), Ciarán O'Brien (Northbridge)",
        "notes": "Feedback on site communication load: sites asked for fewer stand-alone "
        "reminders. Bordeaux recovery plan requested.",
        "action_items": (
            ("Share the Bordeaux recovery plan", "aoife.murphy", 0.4, 0.45),
            ("Move routine reminders for NEU sites to the daily digest", "cro_pm", -0.3, None),
            ("Review La Fe's indemnity clause with sponsor legal", "sponsor_b", -0.2, None),
        ),
    },
)
