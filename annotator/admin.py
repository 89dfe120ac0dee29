"""Django admin for every model: the operator's escape hatch."""

from django.contrib import admin
from django.utils import timezone

from annotator import models


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 1


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "reviews_per_item", "target_precision", "audit_rate", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("project", "user", "role")
    list_filter = ("role", "project")


@admin.register(models.LearnerVersion)
class LearnerVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "status", "adapter_path", "created_at")
    list_filter = ("status", "project")


@admin.register(models.ModelEndpoint)
class ModelEndpointAdmin(admin.ModelAdmin):
    """Where each role's model runs. The form validates with EndpointConfig.validate(); there is
    no key field: `api_key_env` names the variable the workers read the key from."""

    list_display = ("project", "role", "kind", "model", "base_url", "api_key_env", "updated_at")
    list_filter = ("role", "kind", "project")
    readonly_fields = ("created_at", "updated_at")

    def save_model(self, request, obj, form, change) -> None:
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(models.Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "status", "stage", "budget", "created_at")
    list_filter = ("status", "project")


@admin.register(models.AttackQuery)
class AttackQueryAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "campaign", "strategy", "category", "is_benign")
    list_filter = ("strategy", "category", "is_benign")
    search_fields = ("text",)


@admin.register(models.Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ("id", "attack", "learner_version", "sample_index")
    raw_id_fields = ("attack",)


@admin.register(models.Critique)
class CritiqueAdmin(admin.ModelAdmin):
    list_display = ("id", "verdict", "category", "severity", "confidence", "critic_name")
    list_filter = ("verdict", "critic_name")
    raw_id_fields = ("response",)


@admin.register(models.ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "state", "priority", "reviews_done", "reviews_required",
                    "is_gold", "label_confidence")
    list_filter = ("state", "project", "is_audit", "is_gold")
    raw_id_fields = ("critique",)


@admin.register(models.Review)
class ReviewAdmin(admin.ModelAdmin):
    """Read-only: reviews are the audit trail."""

    list_display = ("id", "item", "expert", "action", "final_verdict", "blind", "gold_probe",
                    "created_at")
    list_filter = ("action", "blind", "gold_probe")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.ReviewAssignment)
class ReviewAssignmentAdmin(admin.ModelAdmin):
    list_display = ("item", "expert", "state", "blind", "gold_probe", "opened_at")


@admin.register(models.DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "content_hash", "pair_count", "sft_count", "created_at")


@admin.register(models.SnapshotExample)
class SnapshotExampleAdmin(admin.ModelAdmin):
    list_display = ("id", "snapshot", "kind", "split")
    list_filter = ("kind", "split")


@admin.register(models.TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "method", "status", "created_at")
    list_filter = ("status", "method")


@admin.register(models.Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "format", "status", "rows", "created_at")


@admin.register(models.ReliabilityRun)
class ReliabilityRunAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "status", "fingerprint", "created_at", "finished_at")
    list_filter = ("status", "project")


@admin.register(models.CriticRetrain)
class CriticRetrainAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "trigger", "labels", "accuracy", "ece", "created_at")
    list_filter = ("trigger", "project")
