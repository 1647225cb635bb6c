"""Reads to genotypes: align each patient's FASTQ (minimap2 via mappy), pile up, call and jointly genotype.

Two Spark steps run before preprocess when a cohort comes as reads (``preprocess.input``; decision 0016):

``align``  FASTQ chunks -> aligned-read table (:data:`genoflow.reads.schema.ALIGNED_READ_SCHEMA`)
``call``   aligned reads -> pileup -> genotype likelihoods -> joint genotypes: the genotype table the VCF
           path writes (:mod:`genoflow.genotypes`), plus a bgzipped, tabix-indexed multi-sample VCF.
"""
