from marketing.models.audiences import (
    Audience,
    AudienceMember,
    Export,
    ExportExclusion,
    Suppression,
)
from marketing.models.audit import AuditEvent
from marketing.models.consent import ConsentRecord, CurrentConsent, LawfulBasis, Purpose
from marketing.models.customers import Customer, CustomerIdentity, ProfileField
from marketing.models.figures import (
    AudienceDiversityFigures,
    AudienceFigures,
    OverviewFigures,
    SegmentFigures,
)
from marketing.models.insights import (
    CampaignPlan,
    CustomerRecommendation,
    ExplanationRun,
    RecommendationRun,
)
from marketing.models.jobs import Job
from marketing.models.keys import PseudonymKeyRotation
from marketing.models.offers import Interaction, Offer
from marketing.models.people import UserSettings
from marketing.models.segments import Segment
from marketing.models.training import (
    CustomerScore,
    DriftCheck,
    ModelPromotion,
    RetrainSchedule,
    ScoringChunk,
    ScoringRun,
    TrainingRun,
)
from marketing.models.uploads import Upload

__all__ = [
    "Audience",
    "AudienceDiversityFigures",
    "AudienceFigures",
    "AudienceMember",
    "AuditEvent",
    "CampaignPlan",
    "ConsentRecord",
    "CurrentConsent",
    "Customer",
    "CustomerIdentity",
    "CustomerRecommendation",
    "CustomerScore",
    "DriftCheck",
    "Export",
    "ExplanationRun",
    "ExportExclusion",
    "Interaction",
    "Job",
    "LawfulBasis",
    "ModelPromotion",
    "Offer",
    "OverviewFigures",
    "ProfileField",
    "PseudonymKeyRotation",
    "Purpose",
    "RecommendationRun",
    "RetrainSchedule",
    "ScoringChunk",
    "ScoringRun",
    "Segment",
    "SegmentFigures",
    "Suppression",
    "TrainingRun",
    "Upload",
    "UserSettings",
]
