# snpStats' for.exercise cohort (1,000 HapMap-based subjects x 28,501 chromosome-10 SNPs) as plink 1 files.
# Usage: Rscript scripts/public-cohort.R <out-prefix>
# Writes <prefix>.bed/.bim/.fam with snpStats' own write.plink (cc as plink's 1/2, sex unknown: the data has
# none, and nothing is invented) and <prefix>.covar (FID IID stratum, the stratum as text: a categorical covariate).
suppressMessages(library(snpStats))
prefix <- commandArgs(trailingOnly = TRUE)[1]
if (is.na(prefix)) stop("usage: Rscript scripts/public-cohort.R <out-prefix>")
data(for.exercise)
ids <- rownames(snps.10)
subjects <- subject.support[ids, ]
# FID = IID = the snpStats row name, so the VCF sample id and both plink tables agree.
invisible(capture.output(write.plink(prefix, snps = snps.10, pedigree = ids, id = ids, phenotype = subjects$cc + 1,
            snp.data = snp.support, chromosome = chromosome, position = position,
            allele.1 = A1, allele.2 = A2)))
covar <- data.frame(FID = ids, IID = ids, stratum = as.character(subjects$stratum))
write.table(covar, paste0(prefix, ".covar"), quote = FALSE, sep = "\t", row.names = FALSE)
# The alt-allele (A2) frequency per SNP as snpStats computes it, for the conversion check.
freq <- col.summary(snps.10)
write.table(data.frame(ID = rownames(freq), RAF = freq$RAF, calls = freq$Calls),
            paste0(prefix, ".snpstats-freq.tsv"), quote = FALSE, sep = "\t", row.names = FALSE)
