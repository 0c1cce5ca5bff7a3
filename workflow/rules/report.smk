# Reports: aggregate every run, then render the notebooks with papermill (+ HTML).


rule aggregate_results:
    # update(): Snakemake keeps the previous tables until this job succeeds, and restores them
    # when it fails (a metrics record that fails its checks leaves the last good tables in place)
    input:
        metrics=all_metric_files(),
        paper=PAPER_CSV,
    output:
        results=update(RESULTS_CSV),
        provenance=update(PROVENANCE_CSV),
        table1_csv=report(
            update("results/tables/table1.csv"),
            caption="../report/table1.rst",
            category="Tables",
        ),
        table1_tex=update("results/tables/table1.tex"),
        table2_csv=report(
            update("results/tables/table2.csv"),
            caption="../report/table2.rst",
            category="Tables",
        ),
        table2_tex=update("results/tables/table2.tex"),
    log:
        "results/logs/aggregate_results.log",
    localrule: True
    conda:
        "../../environment.yml"
    resources:
        **config["resources"]["bookkeeping"],
    params:
        default_lambda=config["ciess"]["lambda"],
        allow_mixed_settings=config["allow_mixed_settings"],
        main_recipe=config["ciess"].get("main_recipe"),
    script:
        "../scripts/aggregate_results.py"


# One papermill rule per notebook (notebooks.smk: NOTEBOOKS). The executed notebook is a declared
# output (not a log), and each figure is declared and collected by `snakemake --report`.
for _nb, _spec in NOTEBOOKS.items():

    rule:
        name:
            f"render_{_nb}"
        input:
            notebook=repo_path(f"notebooks/{_nb}.ipynb"),
            data=_spec["inputs"](),
        output:
            **notebook_figures(_nb),
            ipynb=f"results/notebooks/{_nb}.ipynb",
            html=report(
                f"results/notebooks/{_nb}.html",
                caption="../report/notebook.rst",
                category="Notebooks",
            ),
        log:
            f"results/logs/render_notebook/{_nb}.log",
        conda:
            "../../environment.yml"
        resources:
            **config["resources"]["bookkeeping"],
        params:
            parameters=lambda wc, output, input, _nb=_nb: notebook_parameters(
                _nb, input, output
            ),
        shell:
            "papermill {input.notebook:q} {output.ipynb:q} -k python3 --log-output "
            "-y {params.parameters:q} > {log:q} 2>&1 && "
            "jupyter nbconvert --to html --no-input {output.ipynb:q} --output-dir results/notebooks >> {log:q} 2>&1"
