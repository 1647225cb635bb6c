#!/usr/bin/env bash
# A real public cohort that genoflow did not make, as a genoflow study folder (issue 13, decision 0011):
# Bioconductor snpStats' for.exercise data (1,000 subjects, 500 cases / 500 controls, x 28,501 SNPs of
# chromosome 10, built from HapMap CEU and JPT+CHB haplotypes).
#
#   scripts/public-cohort.sh [OUT]     default OUT: .genoflow/public/forexercise
#
# OUT/raw/ gets what a study of this kind brings, and nothing invented:
#   cohort.vcf.gz (+ .tbi)   plink2's export of snpStats' own write.plink output. There is no reference
#                            FASTA: REF is the .bim's A2, as plink2 takes it (decision 0011 makes the FASTA optional)
#   forexercise.fam          the phenotype: cc as plink's 1/2 (control/case), sex 0 (unknown: the data has none)
#   forexercise.covar        FID IID stratum, the stratum as text (CEU | JPT+CHB): a categorical covariate
# No FASTA, no GFF, no FASTQ, no age, no sex. OUT/plink/ keeps the .bed/.bim/.fam the VCF came from.
# The conversion is then checked independently: plink2 --freq and --glm on the .bed and on the VCF must agree,
# allele frequencies must equal snpStats' own, and the counts must be 1,000 samples, 28,501 variants, 500 cases.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(realpath -m "${1:-$ROOT/.genoflow/public/forexercise}")"
PLINK="$OUT/plink/forexercise"
CHECK="$OUT/check"

convert() {
    mkdir -p "$OUT/plink" "$OUT/raw" "$CHECK"
    Rscript "$ROOT/scripts/public-cohort.R" "$PLINK"
    # id-paste=iid: the VCF sample id is the IID alone (FID = IID here), the id the .fam and .covar carry.
    plink2 --bfile "$PLINK" --export vcf bgz id-paste=iid --out "$CHECK/cohort" --silent
    mv "$CHECK/cohort.vcf.gz" "$OUT/raw/cohort.vcf.gz"
    tabix -f -p vcf "$OUT/raw/cohort.vcf.gz"
    cp "$PLINK.fam" "$OUT/raw/forexercise.fam"
    cp "$PLINK.covar" "$OUT/raw/forexercise.covar"
}

# The same statistic from the .bed and from the VCF: identical output, or the conversion changed the data.
check_same() {  # <name> <output suffix> <plink2 args...>
    local name="$1" suffix="$2"; shift 2
    plink2 --bfile "$PLINK" --pheno "$PLINK.pheno" "$@" --out "$CHECK/bed.$name" --silent
    plink2 --vcf "$OUT/raw/cohort.vcf.gz" --double-id --pheno "$PLINK.pheno" "$@" --out "$CHECK/vcf.$name" --silent
    cmp "$CHECK/bed.$name.$suffix" "$CHECK/vcf.$name.$suffix" \
        || { echo "public-cohort: plink2 $* differs between the .bed and the VCF" >&2; exit 1; }
}

verify() {
    # The VCF has no phenotype: both runs read the .fam's (named cc); --double-id gives the VCF's samples FID = IID.
    awk 'BEGIN { print "#FID\tIID\tcc" } { print $1 "\t" $2 "\t" $6 }' "$PLINK.fam" > "$PLINK.pheno"
    check_same freq afreq --freq
    check_same glm cc.glm.logistic.hybrid --glm hide-covar --covar "$PLINK.covar" --covar-variance-standardize
    local samples variants cases
    samples=$(bcftools query -l "$OUT/raw/cohort.vcf.gz" | wc -l)
    variants=$(bcftools index -n "$OUT/raw/cohort.vcf.gz")
    cases=$(awk '$6 == 2' "$OUT/raw/forexercise.fam" | wc -l)
    [[ "$samples $variants $cases" == "1000 28501 500" ]] \
        || { echo "public-cohort: expected 1000 samples, 28501 variants, 500 cases; got $samples $variants $cases" >&2; exit 1; }
    # plink2 prints 6 digits; its ALT is the .bim's A1, snpStats' RAF the frequency of allele.2 (A2): they sum to 1.
    awk 'NR == FNR { if (FNR > 1) raf[$1] = $2; next }
         FNR > 1 { d = $5 + raf[$2] - 1; if (d > 1e-5 || d < -1e-5) bad++ }
         END { if (bad) { print "public-cohort: " bad " allele frequencies differ from snpStats" > "/dev/stderr"; exit 1 } }' \
        "$PLINK.snpstats-freq.tsv" "$CHECK/bed.freq.afreq"
    echo "public-cohort: $OUT/raw: $samples samples, $variants variants, $cases cases; .bed and VCF agree (--freq, --glm)"
}

convert
verify
