"""Article file import and exports (django-import-export).

`ArticleResource` is the one import path: the admin (preview, then confirm)
and `manage.py import_articles` (streamed in chunks) both run it. Columns:
sku, name, unit, unit_weight_g, category, active, barcodes (several, see
posinv.services.articles.barcodes_parse) and one `price:<GROUP>` column per
price group. Every row is validated as a whole and reported per column;
articles are written in bulk with their barcodes and prices, so a large file
costs a few statements per few hundred rows. No stock quantity is imported
here: stock changes only through the ledger."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.utils import timezone
from import_export import fields, resources, widgets

from posinv.bounds import AMOUNT_PLACES, amount_problem, quantity_problem
from posinv.exceptions import InvalidInput
from posinv.models import Article, Barcode, Price, PriceGroup, StockLevel
from posinv.services.articles import barcodes_format, barcodes_parse

PRICE_PREFIX = "price:"
REQUIRED_COLUMNS = ("sku",)


def _plain(value) -> str:
    """A cell as text: spreadsheets turn "1001" into 1001.0."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


class TextWidget(widgets.Widget):
    """Text cells, trimmed; numbers typed as text by a spreadsheet come back as text."""

    def clean(self, value, row=None, **kwargs):
        return _plain(value)

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class DecimalCellWidget(widgets.Widget):
    """A decimal cell (a comma as decimal mark is accepted); a clear
    ValueError, which import-export reports on the column, when it is not one."""

    def __init__(self, *, places: int, minimum: Decimal | None = None):
        self.places = places
        self.minimum = minimum
        # The system's bound (posinv/bounds.py): amounts for 2 places, quantities for 3.
        self.beyond = amount_problem if places == AMOUNT_PLACES else quantity_problem
        super().__init__()

    def clean(self, value, row=None, **kwargs):
        text = _plain(value).replace(",", ".")
        if text == "":
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{text!r} is not a number") from None
        if not number.is_finite():
            raise ValueError(f"{text!r} is not a finite number")
        if number != number.quantize(Decimal(1).scaleb(-self.places)):
            raise ValueError(f"{text} has more than {self.places} decimal places")
        if self.minimum is not None and number < self.minimum:
            raise ValueError(f"{text} must be at least {self.minimum}")
        beyond = self.beyond(number)
        if beyond:
            raise ValueError(f"{text} {beyond}")
        return number

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else f"{value.normalize():f}"


class ArticleResource(resources.ModelResource):
    """The article file. Price columns are added per price group at
    construction, so exports carry them and imports accept them."""

    sku = fields.Field(attribute="sku", column_name="sku", widget=TextWidget())
    name = fields.Field(attribute="name", column_name="name", widget=TextWidget())
    unit = fields.Field(attribute="unit", column_name="unit", widget=TextWidget())
    unit_weight_g = fields.Field(
        attribute="unit_weight_g",
        column_name="unit_weight_g",
        widget=DecimalCellWidget(places=3, minimum=Decimal("0.001")),
    )
    category = fields.Field(attribute="category", column_name="category", widget=TextWidget())
    active = fields.Field(attribute="active", column_name="active", widget=widgets.BooleanWidget())
    # The cells are also kept on the instance (barcodes_cell, price_cells) so
    # the admin preview can show old and new values side by side.
    barcodes = fields.Field(
        attribute="barcodes_cell", column_name="barcodes", widget=TextWidget(), dehydrate_method="dehydrate_barcodes"
    )

    class Meta:
        model = Article
        import_id_fields = ("sku",)
        fields = ("sku", "name", "unit", "unit_weight_g", "category", "active", "barcodes")
        use_bulk = True
        batch_size = 500
        clean_model_instances = True
        # Row numbers and messages are what a user acts on; the admin preview shows the diff.
        skip_html_diff = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.groups = {group.code: group for group in PriceGroup.objects.all()}
        for code in sorted(self.groups):
            self.fields[PRICE_PREFIX + code] = fields.Field(
                attribute=f"price_cells__{code}",
                column_name=PRICE_PREFIX + code,
                widget=TextWidget(),
                dehydrate_method=self._price_of(code),
            )
        self.today = timezone.localdate()
        # Keys seen so far in this file (across chunks): a repeated SKU or
        # barcode is an error on the later row. Only keys are kept, not rows.
        self.seen_skus: dict[str, int] = {}
        self.seen_gtins: dict[str, str] = {}
        self.row_offset = 0

    # ----- export -----

    def get_queryset(self):
        return Article.objects.prefetch_related(
            "barcodes", Prefetch("prices", queryset=Price.objects.order_by("group_id", "-valid_from"))
        ).order_by("sku")

    def dehydrate_barcodes(self, article: Article) -> str:
        return barcodes_format(barcodes=article.barcodes.all())

    def _price_of(self, code: str):
        group = self.groups[code]

        def dehydrate(article: Article) -> str:
            for price in article.prices.all():  # newest first within a group
                if price.group_id == group.pk and price.valid_from <= self.today:
                    return f"{price.amount:f}"
            return ""

        return dehydrate

    # ----- import -----

    def before_import(self, dataset, **kwargs):
        """Check the header, then load what the rows of this chunk refer to
        (their articles, barcodes and current prices) in a few queries."""
        headers = [_plain(h) for h in dataset.headers or []]
        dataset.headers = headers
        self.price_columns = [
            h for h in headers if h.startswith(PRICE_PREFIX) and h[len(PRICE_PREFIX) :] in self.groups
        ]
        self.existing, self.gtin_owner = {}, {}
        problems = self.header_problems(headers)
        if problems:
            raise ValidationError(problems)
        skus = {_plain(value) for value in dataset["sku"]} - {""}
        self.existing = {
            article.sku: article
            for article in Article.objects.filter(sku__in=skus).prefetch_related(
                "barcodes", Prefetch("prices", queryset=Price.objects.order_by("group_id", "-valid_from"))
            )
        }
        gtins: set[str] = set()
        if "barcodes" in headers:
            for cell in dataset["barcodes"]:
                try:
                    gtins.update(spec.gtin for spec in barcodes_parse(text=_plain(cell)))
                except InvalidInput:
                    continue  # reported on its row
        self.gtin_owner = (
            dict(Barcode.objects.filter(gtin__in=gtins).values_list("gtin", "article__sku")) if gtins else {}
        )

    def header_problems(self, headers: list[str]) -> list[str]:
        """What is wrong with the file's columns as a whole (then no row is read)."""
        problems = []
        missing = [c for c in REQUIRED_COLUMNS if c not in headers]
        if missing:
            problems.append(f"the file has no {', '.join(missing)} column (columns: {', '.join(headers)})")
        unknown = [h for h in headers if h.startswith(PRICE_PREFIX) and h[len(PRICE_PREFIX) :] not in self.groups]
        if unknown:
            known = ", ".join(PRICE_PREFIX + c for c in sorted(self.groups)) or "none"
            problems.append(f"unknown price group column {', '.join(unknown)} (known: {known})")
        known_columns = {f.column_name for f in self.fields.values()}
        strange = [h for h in headers if h and h not in known_columns and h not in unknown]
        if strange:
            problems.append(f"unknown column {', '.join(strange)} (known: {', '.join(sorted(known_columns))})")
        return problems

    def get_instance(self, instance_loader, row):
        return self.existing.get(_plain(row.get("sku")))

    def after_init_instance(self, instance, new, row, **kwargs):
        instance.barcodes_cell = "" if new else barcodes_format(barcodes=instance.barcodes.all())
        instance.price_cells = {}
        if not new:
            by_group = {group.pk: code for code, group in self.groups.items()}
            instance.price_cells = {
                by_group[group_id]: f"{amount:f}" for group_id, amount in self._current_prices(instance).items()
            }

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        if field.attribute and field.attribute.startswith("price_cells__"):
            if field.column_name in row:
                instance.price_cells[field.attribute.split("__", 1)[1]] = _plain(row[field.column_name])
            return
        super().import_field(field, instance, row, is_m2m, **kwargs)

    def import_instance(self, instance, row, **kwargs):
        errors: dict[str, list[str]] = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        sku = instance.sku
        row_number = self.row_offset + kwargs.get("row_number", 0)
        if not sku:
            errors.setdefault("sku", []).append("a SKU is required")
        elif sku in self.seen_skus:
            errors.setdefault("sku", []).append(f"SKU {sku} is already in row {self.seen_skus[sku]} of this file")
        else:
            self.seen_skus[sku] = row_number
        instance._import_barcodes = None
        if "barcodes" in row:
            try:
                specs = barcodes_parse(text=_plain(row["barcodes"]))
            except InvalidInput as exc:
                errors.setdefault("barcodes", []).extend(p.reason for p in exc.problems)
            else:
                for spec in specs:
                    owner = self.gtin_owner.get(spec.gtin)
                    in_file = self.seen_gtins.get(spec.gtin)
                    if owner and owner != sku:
                        errors.setdefault("barcodes", []).append(f"barcode {spec.code} belongs to article {owner}")
                    elif in_file and in_file != sku:
                        errors.setdefault("barcodes", []).append(
                            f"barcode {spec.code} is also given for SKU {in_file} in this file"
                        )
                    else:
                        self.seen_gtins[spec.gtin] = sku
                instance._import_barcodes = specs
        instance._import_prices = {}
        for column in self.price_columns:
            try:
                amount = DecimalCellWidget(places=2, minimum=Decimal(0)).clean(row.get(column))
            except ValueError as exc:
                errors.setdefault(column, []).append(str(exc))
                continue
            if amount is not None:
                instance._import_prices[column[len(PRICE_PREFIX) :]] = amount
        if errors:
            raise ValidationError(errors)

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        # Uniqueness of SKUs and barcodes is checked above against the file
        # and the database in bulk; Django's per-row unique check would cost
        # one query a row.
        super().validate_instance(instance, import_validation_errors, validate_unique=False)

    def before_save_instance(self, instance, row, **kwargs):
        instance.updated_at = timezone.now()  # bulk_update skips auto_now

    def get_bulk_update_fields(self):
        return ["name", "unit", "unit_weight_g", "category", "active", "updated_at"]

    def bulk_create(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        if self.create_instances and (using_transactions or not dry_run):
            pending = list(self.create_instances)
            try:
                Article.objects.bulk_create(pending, batch_size=batch_size)
                self._write_related(pending)
            except Exception as exc:
                self.handle_import_error(result, exc, raise_errors)
            finally:
                self.create_instances.clear()

    def bulk_update(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        if self.update_instances and (using_transactions or not dry_run):
            pending = list(self.update_instances)
            try:
                Article.objects.bulk_update(pending, self.get_bulk_update_fields(), batch_size=batch_size)
                self._write_related(pending)
            except Exception as exc:
                self.handle_import_error(result, exc, raise_errors)
            finally:
                self.update_instances.clear()

    def _write_related(self, articles: list[Article]) -> None:
        """Barcodes (the file's list replaces the article's) and prices (a new
        price row dated today only where the amount changed)."""
        with_barcodes = [a for a in articles if getattr(a, "_import_barcodes", None) is not None]
        if with_barcodes:
            keep = {(article.pk, spec.gtin) for article in with_barcodes for spec in article._import_barcodes}
            stale = [
                pk
                for pk, article_id, gtin in Barcode.objects.filter(
                    article__in=[a.pk for a in with_barcodes if a.sku in self.existing]
                ).values_list("pk", "article_id", "gtin")
                if (article_id, gtin) not in keep
            ]
            if stale:
                Barcode.objects.filter(pk__in=stale).delete()
            Barcode.objects.bulk_create(
                [
                    Barcode(article=article, code=spec.code, gtin=spec.gtin, pack_qty=spec.pack_qty)
                    for article in with_barcodes
                    for spec in article._import_barcodes
                ],
                update_conflicts=True,
                unique_fields=["gtin"],
                update_fields=["code", "pack_qty"],
            )
        prices = []
        for article in articles:
            wanted = getattr(article, "_import_prices", {})
            if not wanted:
                continue
            current = self._current_prices(article)
            for code, amount in wanted.items():
                group = self.groups[code]
                if current.get(group.pk) != amount:
                    prices.append(
                        Price(
                            article=article, group=group, amount=amount, currency=group.currency, valid_from=self.today
                        )
                    )
        if prices:
            Price.objects.bulk_create(
                prices,
                update_conflicts=True,
                unique_fields=["article", "group", "valid_from"],
                update_fields=["amount", "currency"],
            )

    def _current_prices(self, article: Article) -> dict[int, Decimal]:
        if article.sku not in self.existing:
            return {}
        current: dict[int, Decimal] = {}
        for price in article.prices.all():  # prefetched, newest first per group
            if price.valid_from <= self.today and price.group_id not in current:
                current[price.group_id] = price.amount
        return current


class StockLevelResource(resources.ModelResource):
    """Export of stock levels: one row per article and location."""

    sku = fields.Field(attribute="article__sku", column_name="sku")
    article_name = fields.Field(attribute="article__name", column_name="name")
    location = fields.Field(attribute="location__code", column_name="location")
    on_hand = fields.Field(attribute="on_hand", column_name="on_hand", widget=DecimalCellWidget(places=3))
    reorder_point = fields.Field(
        attribute="reorder_point", column_name="reorder_point", widget=DecimalCellWidget(places=3)
    )
    updated_at = fields.Field(attribute="updated_at", column_name="updated_at", widget=widgets.DateTimeWidget())

    class Meta:
        model = StockLevel
        fields = ("sku", "article_name", "location", "on_hand", "reorder_point", "updated_at")
        import_id_fields = ()

    def get_queryset(self):
        return StockLevel.objects.select_related("article", "location").order_by("location__code", "article__sku")
